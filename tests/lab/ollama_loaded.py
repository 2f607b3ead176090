"""What an Ollama server in the lab holds now (``/api/ps``), and putting that back.

Lab checks that load or unload models read the server's loaded models first and, in a
``finally``, put them back: models loaded by the check are unloaded, models it pushed
out are loaded again with the keep-alive they had left (``expires_at``), so the next
module finds the server as the deploy and the earlier checks left it. Everything is
asked on the Ollama host itself, at the address the inventory gives its server.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import Any

from hearth.configs import ollama as configs

FOREVER_YEAR = 2100  # Ollama shows a model kept for good with an expires_at centuries ahead


def loaded(node: Any, inv: Any, host: str) -> dict[str, dict[str, Any]]:
    """Model name -> its ``/api/ps`` row (a probe that loads nothing)."""
    out = node.check_output(f"curl -sS -m 10 http://{configs.listen_address(inv, host)}/api/ps")
    return {m["name"]: m for m in json.loads(out)["models"]}


def row(models: dict[str, dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The row of ``model`` (Ollama adds ``:latest`` to a bare name)."""
    return models.get(model) or models.get(f"{model}:latest")


def expires(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))


def for_good(entry: dict[str, Any]) -> bool:
    return expires(entry).year > FOREVER_YEAR


def _generate(node: Any, inv: Any, host: str, model: str, keep_alive: int) -> None:
    """A load-only (empty prompt) ``/api/generate``: loads ``model`` with ``keep_alive``
    seconds (negative: for good), or unloads it with 0, as Ollama's API documents."""
    body = json.dumps({"model": model, "keep_alive": keep_alive})
    node.check_output(f"curl -sS -m 60 -f http://{configs.listen_address(inv, host)}/api/generate "
                      f"-d {shlex.quote(body)}")


def put_back(node: Any, inv: Any, host: str, before: dict[str, dict[str, Any]]) -> None:
    """Make the server hold what it held in ``before`` (each with the keep-alive it had left)."""
    now = loaded(node, inv, host)
    for name in now.keys() - before.keys():
        _generate(node, inv, host, name, 0)
    for name in before.keys() - now.keys():
        entry = before[name]
        if for_good(entry):
            _generate(node, inv, host, name, -1)
        elif (left := int((expires(entry) - datetime.now(UTC)).total_seconds())) > 0:
            _generate(node, inv, host, name, left)  # else it would have been unloaded by now anyway
