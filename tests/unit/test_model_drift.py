"""A model the engine already has, against the planner's numbers (Ollama's /api/show)."""

from __future__ import annotations

import json
import subprocess

from hearth.facts.ollama import OllamaModelInfo
from hearth.planner import modelinfo
from hearth.planner.catalogue import CATALOGUE
from tests.unit.test_lab_ollama_standin import MODEL, MakeServer, make_server  # noqa: F401

# The model_info of Ollama's API docs, "Show Model Information" (docs/api.md): Llama 3 8B.
DOCS_MODEL_INFO = {
    "general.architecture": "llama", "general.file_type": 2, "general.parameter_count": 8030261248,
    "general.quantization_version": 2, "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8,
    "llama.attention.layer_norm_rms_epsilon": 0.00001, "llama.block_count": 32, "llama.context_length": 8192,
    "llama.embedding_length": 4096, "llama.feed_forward_length": 14336, "llama.rope.dimension_count": 128,
    "llama.rope.freq_base": 500000, "llama.vocab_size": 128256,
}  # fmt: skip


def test_the_docs_model_matches_the_catalogue_llama() -> None:
    assert modelinfo.numbers(DOCS_MODEL_INFO) == {"layers": 32, "kv_heads": 8, "head_dim": 128,
                                                  "params_b": 8.030261248}
    assert modelinfo.compare(CATALOGUE["llama-3.1-8b"], DOCS_MODEL_INFO) == []


def test_another_model_behind_the_same_name_is_reported_per_field() -> None:
    drifts = modelinfo.compare(CATALOGUE["qwen2.5-7b"], DOCS_MODEL_INFO)
    assert {d.field: (d.planned, d.engine) for d in drifts} == {
        "layers": ("28", "32"), "kv_heads": ("4", "8"), "params_b": ("7.62B", "8.03B")}
    line = modelinfo.drift_line("den-mini", "qwen2.5:7b", "qwen2.5-7b", drifts)
    assert line.startswith("den-mini: qwen2.5:7b as served reports layers 32 (plan: 28)")


def test_an_engine_that_reports_no_numbers_is_no_drift() -> None:
    assert modelinfo.compare(CATALOGUE["qwen2.5-7b"], {"general.architecture": "standin"}) == []
    assert OllamaModelInfo().process(["curl: (7) Failed to connect"]) == {}
    assert OllamaModelInfo().process([]) == {}


def test_the_fact_reads_show_from_a_running_server(make_server: MakeServer) -> None:  # noqa: F811
    s = make_server()
    s.cli("pull", MODEL)
    store = s.env["OLLAMA_MODELS"] + "/standin/model-info"
    subprocess.run(["mkdir", "-p", store], check=True)
    with open(f"{store}/{MODEL.replace(':', '_')}.json", "w") as f:
        json.dump(DOCS_MODEL_INFO, f)
    fact = OllamaModelInfo()
    command = fact.command(address=f"127.0.0.1:{s.port}", model=MODEL)
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30).stdout
    assert fact.process(out.splitlines()) == DOCS_MODEL_INFO
