"""hearth.operations.http.upstream_answers against a fake host: a report, never a command or a failure.

An operation must be a generator (pyinfra iterates its commands): one that only reports
crashed the deploy with "'NoneType' object is not iterable" (seen in a lab2 session).
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.facts.http import OpenAIModels
from hearth.operations import http as ops

from .test_operations_files import FakeHost


@pytest.mark.parametrize(("models", "said"), [
    (["gemma-4-31b"], "upstream mouth/gemma-4-31b answers with gemma-4-31b"),
    (["other"], "WARNING upstream mouth/gemma-4-31b: http://10.77.0.50:1234/v1/models answers without "
                "gemma-4-31b (lists other)"),
    (None, "WARNING upstream mouth/gemma-4-31b: http://10.77.0.50:1234/v1/models does not answer from"),
])
def test_upstream_answers_only_reports(monkeypatch: pytest.MonkeyPatch, models: Any, said: str) -> None:
    fake = FakeHost({OpenAIModels: models})
    fake.name = "k3master"  # type: ignore[attr-defined]  (the gateway host asking)
    monkeypatch.setattr(ops, "host", fake)
    commands = ops.upstream_answers._inner(base_url="http://10.77.0.50:1234/v1", model="gemma-4-31b",
                                           label="mouth/gemma-4-31b")
    assert list(commands) == []
    assert fake.logged[0].startswith(said), fake.logged
