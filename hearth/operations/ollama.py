"""Operations on an Ollama server: models pulled once, never re-pulled."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation

from hearth.facts.ollama import OllamaModels, model_tag


@operation()
def model_pulled(model: str, address: str, wait_s: int = 60):
    """
    Pull a model into the Ollama server at ``address`` unless it has it already.

    + model: the model as Ollama names it (``qwen2.5-coder:14b``)
    + address: HOST:PORT the server listens on (its OLLAMA_HOST)
    + wait_s: how long to wait for a just-started server to answer first

    **Example:**

    .. code:: python

        ollama.model_pulled(
            name="Pull qwen2.5-coder:14b",
            model="qwen2.5-coder:14b",
            address="10.77.0.12:11434",
        )
    """
    present = host.get_fact(OllamaModels, address=address) or []
    if model_tag(model) in present:
        host.noop(f"{model} is already pulled")
        return
    env = f"OLLAMA_HOST={shlex.quote(address)}"
    yield StringCommand(
        f"for i in $(seq 1 {int(wait_s)}); do {env} ollama list >/dev/null 2>&1 && break; sleep 1; done; "
        f"{env} ollama pull {shlex.quote(model)}"
    )
