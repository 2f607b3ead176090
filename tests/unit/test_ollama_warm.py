"""A model that is to stay warm (keep_alive "-1") is loaded by the deploy, once:
hearth.operations.ollama.model_loaded and the OllamaLoaded fact, run against a fake host."""

from __future__ import annotations

import json
import shlex

import pytest
from pyinfra.api import StringCommand

from hearth.facts.ollama import OllamaLoaded
from hearth.operations import ollama as ops

from .test_operations_files import FakeHost


def test_loaded_models_from_ollama_ps() -> None:
    out = ["NAME                ID              SIZE      PROCESSOR    UNTIL",
           "qwen3.5:9b          6488c96fa5fa    6.6 GB    100% GPU     Forever",
           "llama3              365c0bd3c000    4.7 GB    100% GPU     4 minutes from now"]
    assert OllamaLoaded().process(out) == ["qwen3.5:9b", "llama3:latest"]
    assert OllamaLoaded().process([]) == []


def test_a_warm_model_is_loaded_when_ollama_ps_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeHost({OllamaLoaded: ["deepseek-coder:6.7b"]})
    monkeypatch.setattr(ops, "host", fake)
    (cmd,) = list(ops.model_loaded._inner(model="qwen3.5:9b", address="10.77.0.41:11434"))
    assert isinstance(cmd, StringCommand)
    text = cmd.get_raw_value()
    assert "http://10.77.0.41:11434/api/generate" in text
    body = shlex.split(text.rsplit(" -d ", 1)[1])[0]
    assert json.loads(body) == {"model": "qwen3.5:9b", "keep_alive": -1}  # a load, no prompt


def test_a_loaded_warm_model_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeHost({OllamaLoaded: ["qwen3.5:9b"]})
    monkeypatch.setattr(ops, "host", fake)
    assert list(ops.model_loaded._inner(model="qwen3.5:9b", address="10.77.0.41:11434")) == []
    assert fake.logged == ["qwen3.5:9b is loaded already"]
