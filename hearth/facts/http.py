"""Facts about OpenAI-compatible servers, asked from the host itself (curl)."""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase


class OpenAIModels(FactBase[list[str] | None]):
    """
    The model ids an OpenAI-compatible server at ``base_url`` lists on ``/v1/models``,
    or ``None`` when it does not answer (or ``/health`` fails where ``health`` is set).
    Asked from the host with a 5 s limit per request.

    .. code:: python

        host.get_fact(OpenAIModels, base_url="http://10.77.0.11:8000", health=True)
        # ["qwen2.5-vl-7b-router-awq"] or None
    """

    requires_command = "curl"

    def command(self, base_url: str, health: bool = False) -> str:
        base = base_url.rstrip("/")
        models = f"curl -fsS -m 5 {shlex.quote(base + '/v1/models')}"
        if health:
            models = f"curl -fsS -m 5 -o /dev/null {shlex.quote(base + '/health')} && {models}"
        return f"{models} 2>/dev/null || echo unreachable"

    def process(self, output: list[str]) -> list[str] | None:
        text = "\n".join(output).strip()
        if text == "unreachable":
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]
