"""The model catalogue: cited numbers that add up, and names as people type them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import InventoryError, load_inventory
from hearth.inventory.model import Gpu, Serve
from hearth.plan import plan_text
from hearth.planner import names, quants
from hearth.planner.catalogue import entries, find_arch, implied_params_b
from hearth.planner.vram import plan_host, plan_serve, resolve_quant

CHECKED = [name for name, e in entries().items() if not e.estimate]


@pytest.mark.parametrize("name", CHECKED)
def test_published_parameter_count_matches_what_the_config_implies(name: str) -> None:
    entry = entries()[name]
    implied = implied_params_b(entry.config)
    assert implied == pytest.approx(entry.arch.params_b, rel=0.02), f"{name}: config implies {implied:.3f}B"


@pytest.mark.parametrize("name", list(entries()))
def test_every_entry_cites_its_source(name: str) -> None:
    source = entries()[name].arch.source
    assert "huggingface.co/" in source and "config.json" in source
    assert entries()[name].estimate == source.startswith("estimate:")


def test_aliases_are_unique_across_entries() -> None:
    seen: dict[str, str] = {}
    for name, entry in entries().items():
        for alias in entry.aliases:
            assert alias not in seen, f"{alias} names both {seen[alias]} and {name}"
            seen[alias] = name


@pytest.mark.parametrize("model", [
    # every model the five seeds name
    "qwen2.5-coder:14b", "qwen3.5:9b", "deepseek-coder:6.7b", "Qwen/Qwen2.5-VL-7B-Instruct-AWQ",
    "qwen2.5:14b", "qwen2.5-coder:7b", "deepseek-r1:8b", "qwen2.5-coder:1.5b", "qwen2.5:32b",
    "nomic-embed-text", "llama3.2", "llama3.2:3b", "deepseek-r1:14b", "deepseek-r1:32b", "deepseek-r1:1.5b",
    "deepseek-r1:7b", "deepseek-r1:70b",
    # the families people run at home
    "llama3.1:8b", "llama3.3:70b", "llama3.2:1b", "qwen3:8b", "qwen3:30b-a3b", "qwen3:32b", "gemma2:9b",
    "gemma3:27b", "gemma3:12b", "mistral:7b", "mistral-nemo:12b", "mixtral:8x7b", "phi3:mini", "phi4:14b",
    "llava:7b", "qwen2.5vl:7b", "mxbai-embed-large", "bge-m3", "all-minilm:l6-v2",
    "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-30B-A3B", "google/gemma-3-27b-it",
    "mistralai/Mistral-Nemo-Instruct-2407", "microsoft/phi-4", "BAAI/bge-m3",
])
def test_names_people_type_resolve(model: str) -> None:
    assert find_arch(None, model, {}) is not None, model


@pytest.mark.parametrize(("model", "arch", "quant"), [
    ("llama3.2:3b", "llama-3.2-3b", None),
    ("llama3.2", "llama-3.2-3b", None),
    ("qwen2.5-coder:14b-instruct-q4_K_M", "qwen2.5-14b", "q4_k_m"),
    ("qwen2.5:7b-instruct-q8_0", "qwen2.5-7b", "q8_0"),
    ("llama3.1:8b-instruct-fp16", "llama-3.1-8b", "fp16"),
    ("gemma2:9b-instruct-iq4_xs", "gemma-2-9b", "iq4_xs"),
    ("nomic-embed-text:latest", "nomic-embed-text-v1.5", None),
    ("nomic-embed-text:v1.5", "nomic-embed-text-v1.5", None),
    ("Qwen/Qwen2.5-VL-7B-Instruct-AWQ", "qwen2.5-vl-7b", "awq"),
    ("Qwen/Qwen2.5-Coder-32B-Instruct-GPTQ-Int4", "qwen2.5-32b", "gptq"),
    ("Qwen/Qwen3-8B-FP8", "qwen3-8b", "fp8"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "qwen2.5-14b", None),
])
def test_tags_and_repository_ids_give_architecture_and_quant(model: str, arch: str, quant: str | None) -> None:
    found = find_arch(None, model, {})
    assert found is not None and found[0] == arch
    assert names.parse(model).quant == quant


@pytest.mark.parametrize(("written", "canonical"), [
    ("F16", "fp16"), ("f16", "fp16"), ("BF16", "bf16"), ("Q4_K_M", "q4_k_m"), ("q4_k", "q4_k_m"),
    ("IQ4_XS", "iq4_xs"), ("Q5_0", "q5_0"), ("Q6_K", "q6_k"), ("awq_marlin", "awq"), ("AWQ", "awq"),
    ("gptq_marlin", "gptq"), ("fp8", "fp8"), ("W4A16", "int4"), ("Q3_K_M", "q3_k_m"), ("IQ2_XXS", "iq2_xxs"),
])
def test_quant_names_as_ollama_llama_cpp_and_vllm_write_them(written: str, canonical: str) -> None:
    assert quants.normalise(written) == canonical
    assert 1 < quants.QUANTS[canonical].bits <= 32


def test_quant_bits_follow_llama_cpps_sizes() -> None:
    # QUANT_OPTIONS: Q4_K_S 4.37G and Q3_K_M 3.74G at Llama-3-8B (8.03e9 parameters)
    assert quants.QUANTS["q4_k_s"].bits == pytest.approx(4.37 * 2**30 * 8 / 8.03e9, abs=0.01)
    assert quants.QUANTS["q3_k_m"].bits == pytest.approx(4.00, abs=0.01)
    order = ["iq2_xxs", "q2_k", "q3_k_m", "iq4_xs", "q4_k_m", "q5_k_m", "q6_k", "q8_0", "fp16"]
    bits = [quants.QUANTS[q].bits for q in order]
    assert bits == sorted(bits)


def serve(model: str, engine: str = "ollama", **extra: object) -> Serve:
    return Serve(name=model, engine=engine, model=model, **extra)  # type: ignore[arg-type]


def test_quant_comes_from_the_inventory_then_the_name_then_the_engine() -> None:
    assert resolve_quant(serve("llama3.2:3b", quant="Q8_0"), "llama-3.2-3b") == ("q8_0", None)
    assert resolve_quant(serve("qwen2.5-coder:14b-instruct-q5_K_M"), "qwen2.5-14b") == ("q5_k_m", None)
    assert resolve_quant(serve("llama3.2:3b"), "llama-3.2-3b") == ("q4_k_m", None)  # Ollama's library
    assert resolve_quant(serve("nomic-embed-text"), "nomic-embed-text-v1.5") == ("fp16", None)
    assert resolve_quant(serve("Qwen/Qwen3-8B", engine="vllm"), "qwen3-8b") == ("fp16", None)
    assert resolve_quant(serve("RedHatAI/Qwen3-8B-quantized.w4a16", engine="vllm", quant="compressed-tensors"),
                         "qwen3-8b") == ("int4", None)
    quant, problem = resolve_quant(serve("org/some-model", engine="vllm", quant="compressed-tensors"), "qwen3-8b")
    assert quant is None and "does not say its scheme" in str(problem)
    quant, problem = resolve_quant(serve("llama3.2:3b", quant="q9_z"), "llama-3.2-3b")
    assert quant is None and "unknown quant 'q9_z'" in str(problem)


GPU = Gpu(model="RTX 3090", vram_gb=24)


def test_embedding_models_hold_no_per_slot_kv_cache() -> None:
    one = plan_serve("h", serve("nomic-embed-text", slots=1, context=8192), "nomic-embed-text-v1.5",
                     entries()["nomic-embed-text-v1.5"].arch, GPU)
    many = plan_serve("h", serve("nomic-embed-text", slots=8, context=8192), "nomic-embed-text-v1.5",
                      entries()["nomic-embed-text-v1.5"].arch, GPU)
    assert one.kv_gb == many.kv_gb == 0
    assert one.resident_gb == many.resident_gb


def test_embedding_model_within_ten_percent_of_ollamas_reported_size() -> None:
    # `ollama ps`: "nomic-embed-text:v1.5  323 MB  100% GPU  2048" (Crosstalk-Solutions/project-nomad#1268)
    plan = plan_serve("h", serve("nomic-embed-text:v1.5", context=2048), "nomic-embed-text-v1.5",
                      entries()["nomic-embed-text-v1.5"].arch, GPU)
    reported = 323e6 / 2**30
    assert plan.resident_gb == pytest.approx(reported, rel=0.10)


SEED_004 = """
name: seed004
lan: {cidr: 10.1.0.0/24}
overlay: {cidr: 10.99.0.0/24}
k3s: {server: pi1}
gateway: {host: pi1, admin_token: "env:HEARTH_ADMIN"}
hosts:
  pi1: {address: 10.1.0.11, overlay_ip: 10.99.0.11, arch: arm64, roles: [k3s_server, gateway]}
  pi2: {address: 10.1.0.12, overlay_ip: 10.99.0.12, arch: arm64, roles: [k3s_agent]}
  pi3: {address: 10.1.0.13, overlay_ip: 10.99.0.13, arch: arm64, roles: [k3s_agent]}
  rtx:
    address: 10.1.0.20
    overlay_ip: 10.99.0.20
    roles: [k3s_agent]
    gpus: [{model: RTX 3090, vram_gb: 24}]
    serves:
      - {name: "llama3.2:3b", engine: ollama, model: "llama3.2:3b", context: 8192, slots: 2, routes: [chat]}
      - {name: nomic-embed-text, engine: ollama, model: nomic-embed-text, context: 8192, slots: 4, routes: [embed]}
routing:
  default_route: chat
  embedding_route: embed
"""


def test_seed_004_lab_plans_without_a_models_block(tmp_path: Path) -> None:
    path = tmp_path / "seed004.yml"
    path.write_text(SEED_004)
    inv = load_inventory(path)
    assert inv.models == {}
    plans, problems = plan_host("rtx", inv.hosts["rtx"], inv.models)
    assert problems == []
    (gpu,) = plans
    by_name = {m.serve: m for m in gpu.models}
    assert by_name["llama3.2:3b"].arch == "llama-3.2-3b"
    assert by_name["nomic-embed-text"].arch == "nomic-embed-text-v1.5" and by_name["nomic-embed-text"].kv_gb == 0
    assert gpu.fits
    config = gateway_config_from_inventory(inv, resolve=lambda ref: "secret")
    assert config.routing.embedding_route == "embed"
    text = plan_text(inv)
    assert "(embeddings)" in text and "embed" in text and "tie-break none set" in text


def test_an_embedding_route_on_a_chat_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(SEED_004.replace("embedding_route: embed", "embedding_route: chat"))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    (line,) = caught.value.lines
    assert "routing.embedding_route: route chat is served by rtx/llama3.2:3b, which is not an embedding model" in line
