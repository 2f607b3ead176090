"""Facts about an Ollama server and its installs on the host."""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase


def model_tag(name: str) -> str:
    """Ollama's canonical name: a model without a tag means ``:latest``."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaModels(FactBase[list[str]]):
    """
    Models the Ollama server at ``address`` (HOST:PORT) has pulled; empty when the
    server is not running yet (e.g. before the first deploy starts it).

    .. code:: python

        host.get_fact(OllamaModels, address="10.77.0.12:11434")  # ["qwen2.5-coder:14b"]
    """

    requires_command = "ollama"

    def command(self, address: str) -> str:
        return f"OLLAMA_HOST={address} ollama list 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        rows = [line.split() for line in output if line.strip()]
        return [model_tag(row[0]) for row in rows if row and row[0] != "NAME"]


class OllamaModelInfo(FactBase[dict]):
    """
    What the Ollama server at ``address`` reports about ``model`` (``POST /api/show``'s
    ``model_info``: the GGUF metadata, e.g. ``llama.block_count``); empty when the server
    is not running or does not have the model yet.

    .. code:: python

        host.get_fact(OllamaModelInfo, address="10.77.0.12:11434", model="llama3.2:3b")
        # {"general.architecture": "llama", "llama.block_count": 28, ...}
    """

    requires_command = "curl"

    def command(self, address: str, model: str) -> str:
        body = json.dumps({"model": model})
        return f"curl -fsS -m 10 http://{address}/api/show -d {shlex.quote(body)} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict:
        try:
            shown = json.loads("\n".join(output) or "{}")
        except ValueError:
            return {}
        info = shown.get("model_info") if isinstance(shown, dict) else None
        return info if isinstance(info, dict) else {}
class DirectoryEntries(FactBase[list[str]]):
    """
    Names in a directory (not recursive, hidden ones too); empty when it is missing.

    .. code:: python

        host.get_fact(DirectoryEntries, path="/opt/ollama")  # ["0.13.5-0123456789ab", "0.14.0-ba9876543210"]
    """

    def command(self, path: str) -> str:
        return f"ls -1A {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


class OllamaLoaded(FactBase[list[str]]):
    """
    Models the Ollama server at ``address`` holds in memory now (``ollama ps``); empty
    when the server is not running.

    .. code:: python

        host.get_fact(OllamaLoaded, address="10.77.0.12:11434")  # ["qwen3.5:9b"]
    """

    requires_command = "ollama"

    def command(self, address: str) -> str:
        return f"OLLAMA_HOST={address} ollama ps 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        rows = [line.split() for line in output if line.strip()]
        return [model_tag(row[0]) for row in rows if row and row[0] != "NAME"]
