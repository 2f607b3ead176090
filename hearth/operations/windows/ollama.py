"""Ollama on a Windows host: models pulled once, never re-pulled."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from hearth import powershell as ps
from hearth.facts.ollama import model_tag
from hearth.facts.windows import OllamaModelsWindows
from hearth.operations.windows import run


@operation()
def model_pulled(exe: str, model: str, address: str, wait_s: int = 60):
    """
    Pull ``model`` into the Ollama server at ``address`` unless ``ollama list`` has it.
    Waits up to ``wait_s`` seconds for a just-(re)started server to answer first.

    **Example:**

    .. code:: python

        ollama.model_pulled(name="Model qwen2.5-coder:14b pulled", exe=r"C:\\Program Files\\Ollama\\ollama.exe",
                            model="qwen2.5-coder:14b", address="10.77.0.30:11434")
    """
    present = host.get_fact(OllamaModelsWindows, exe=exe, address=address) or []
    if model_tag(model) in present:
        host.noop(f"{model} is already pulled")
        return
    exe_q = ps.quote(exe)
    yield run(
        f"$env:OLLAMA_HOST = {ps.quote(address)}",
        f"$deadline = (Get-Date).AddSeconds({int(wait_s)})",
        "$ErrorActionPreference = 'Continue'  # `ollama list` complains on stderr until the server is up",
        f"do {{ & {exe_q} list *> $null; if ($LASTEXITCODE -eq 0) {{ break }}; Start-Sleep -Seconds 1 }} "
        "while ((Get-Date) -lt $deadline)",
        ps.native(f"& {exe_q} pull {ps.quote(model)}"),
    )
