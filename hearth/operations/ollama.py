"""Operations on an Ollama server: models pulled once, never re-pulled; an older store
adopted; a model that is to stay warm loaded."""

from __future__ import annotations

import json
import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import Directory

from hearth.facts.ollama import OllamaLoaded, OllamaModels, model_tag


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


@operation()
def models_adopted(src: str, dest: str, owner: str = "ollama"):
    """
    Move an Ollama model store found at ``src`` (e.g. where Ollama's install.sh
    keeps it) into ``dest``, so taking the host over loses no model: a plain rename
    when ``dest`` is missing or empty, else a copy that keeps ``dest``'s files.

    + src: the old store (``/usr/share/ollama/.ollama/models``)
    + dest: the store the unit's OLLAMA_MODELS names
    + owner: who owns the moved files (the Ollama user)

    **Example:**

    .. code:: python

        ollama.models_adopted(
            name="Adopt install.sh's models",
            src="/usr/share/ollama/.ollama/models",
            dest="/var/lib/ollama/models",
        )
    """
    if not host.get_fact(Directory, path=src):
        host.noop(f"no model store at {src}")
        return
    qsrc, qdest = shlex.quote(src), shlex.quote(dest)
    parent = shlex.quote(dest.rstrip("/").rsplit("/", 1)[0])
    yield StringCommand(
        f'if [ -d {qdest} ] && [ -z "$(ls -A {qdest})" ]; then rmdir {qdest}; fi; '
        f"if [ -e {qdest} ]; then cp -a -n {qsrc}/. {qdest}/ && rm -rf {qsrc}; "
        f"else mkdir -p {parent} && mv {qsrc} {qdest}; fi"
    )
    yield StringCommand("chown", "-R", f"{owner}:{owner}", qdest)


@operation()
def model_loaded(model: str, address: str, keep_alive: int = -1, wait_s: int = 60):
    """
    Load a model into the Ollama server at ``address`` (a load, no generation:
    ``POST /api/generate`` with no prompt) unless it is loaded already, so a model
    that is to stay warm does not wait for its first request.

    + model: the model as Ollama names it (``qwen3.5:9b``)
    + address: HOST:PORT the server listens on (its OLLAMA_HOST)
    + keep_alive: seconds it stays loaded (-1: for good, as Ollama reads a negative number)
    + wait_s: how long to wait for a just-started server to answer first

    **Example:**

    .. code:: python

        ollama.model_loaded(
            name="Load qwen3.5:9b (kept warm)",
            model="qwen3.5:9b",
            address="10.77.0.21:11434",
        )
    """
    loaded = host.get_fact(OllamaLoaded, address=address) or []
    if model_tag(model) in loaded:
        host.noop(f"{model} is loaded already")
        return
    env = f"OLLAMA_HOST={shlex.quote(address)}"
    body = json.dumps({"model": model, "keep_alive": int(keep_alive)})
    yield StringCommand(
        f"for i in $(seq 1 {int(wait_s)}); do {env} ollama list >/dev/null 2>&1 && break; sleep 1; done; "
        f"curl -fsS -m 600 -o /dev/null http://{address}/api/generate -d {shlex.quote(body)}"
    )
