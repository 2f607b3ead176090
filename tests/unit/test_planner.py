"""VRAM planner: estimates land within 10% of the resident sizes the seeds report."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.inventory.model import ArchSpec, Gpu, Host, Serve
from hearth.planner.catalogue import CATALOGUE, find_arch
from hearth.planner.vram import kv_cache_gb, plan_host, plan_serve
from tests.unit import seed001

RTX_3060 = Gpu(model="RTX 3060", vram_gb=12, reserved_gb=1.0)
GPU_24 = Gpu(model="24 GB card", vram_gb=24)


def resident(model: str, quant: str, context: int, kv: str = "auto", gpu: Gpu = GPU_24, **extra: object) -> float:
    serve = Serve(name=model, engine="ollama", model=model, quant=quant, context=context,
                  kv_cache_dtype=kv, **extra)  # type: ignore[arg-type]
    found = find_arch(None, model, {})
    assert found is not None, model
    return plan_serve("h", serve, found[0], found[1], gpu).resident_gb


def within(estimate: float, reported: float, tolerance: float = 0.10) -> bool:
    return abs(estimate - reported) <= tolerance * reported


def test_seed_000_qwen25_coder_14b_on_the_3060() -> None:
    # "qwen2.5-coder:14b quantised to Q4_K_M (~9-10GB resident with active context)",
    # usable context near 16k with ~1.5 GB of KV cache: a q8_0 cache at 16k.
    size = resident("qwen2.5-coder:14b", "Q4_K_M", 16384, kv="q8_0", gpu=RTX_3060)
    assert within(size, 9.5), size
    assert size <= RTX_3060.usable_gb


@pytest.mark.parametrize(
    ("model", "reported"),
    [
        ("qwen2.5:14b", 9.0),  # seed 003: 14B model (Q4_K_M) -> 9.0 GB
        ("qwen2.5-coder:7b", 4.4),  # 7B coder -> 4.4 GB
        ("deepseek-r1:8b", 4.6),  # 8B reasoning -> 4.6 GB
        ("qwen2.5-coder:1.5b", 1.1),  # 1.5B fast coder -> 1.1 GB
    ],
)
def test_seed_003_gpu_memory_plan_at_ollamas_default_context(model: str, reported: float) -> None:
    # seed 003's lineup runs at Ollama's (then) default context of 2048 tokens
    size = resident(model, "Q4_K_M", 2048)
    assert within(size, reported), f"{model}: {size:.2f} GiB vs {reported} reported"


def test_kv_cache_grows_with_context_and_shrinks_with_dtype() -> None:
    arch = CATALOGUE["qwen2.5-14b"]
    fp16_16k = kv_cache_gb(arch, 16384, "fp16")
    assert fp16_16k == pytest.approx(3.0, rel=0.01)  # 2 x 48 layers x 8 heads x 128 x 2 B x 16384
    assert kv_cache_gb(arch, 32768, "fp16") == pytest.approx(2 * fp16_16k)
    assert kv_cache_gb(arch, 16384, "fp8") == pytest.approx(fp16_16k / 2)


def test_sliding_window_layers_cap_their_cache() -> None:
    gemma = CATALOGUE["gemma-4-31b"]
    full = ArchSpec(params_b=31, layers=62, kv_heads=16, head_dim=128)
    assert kv_cache_gb(gemma, 32768, "fp16") < kv_cache_gb(full, 32768, "fp16") / 4


def test_ollama_slots_multiply_the_cache() -> None:
    one = resident("qwen2.5-coder:7b", "Q4_K_M", 8192)
    three = resident("qwen2.5-coder:7b", "Q4_K_M", 8192, slots=3)
    arch = CATALOGUE["qwen2.5-7b"]
    assert three - one == pytest.approx(2 * kv_cache_gb(arch, 8192, "auto"))


def test_vllm_takes_its_share_of_the_card() -> None:
    serve = Serve(name="vl", engine="vllm", model="Qwen/Qwen2.5-VL-7B-Instruct-AWQ", arch="qwen2.5-vl-7b",
                  quant="awq", context=32768, gpu_memory_utilization=0.78)
    gpu = Gpu(model="RTX 4090 Laptop GPU", vram_gb=16)
    plan = plan_serve("eyes", serve, "qwen2.5-vl-7b", CATALOGUE["qwen2.5-vl-7b"], gpu)
    assert plan.resident_gb == pytest.approx(0.78 * 16)
    assert plan.full_context_sequences > 1
    assert not plan.problems


def test_vllm_default_utilisation_on_unified_memory_does_not_fit() -> None:
    host = Host(address="10.0.0.7", overlay_ip="10.77.0.7",
                gpus=[Gpu(model="GB10", vram_gb=128, reserved_gb=16, unified_memory=True)],
                serves=[Serve(name="q", engine="vllm", model="Qwen/Qwen3.6-35B-A3B-FP8", arch="qwen3.6-35b-a3b",
                              quant="fp8", context=131072)])
    (plan,), problems = plan_host("spark", host, {})
    assert not problems
    assert plan.used_gb == pytest.approx(0.9 * 128)
    assert plan.headroom_gb == pytest.approx(112 - 115.2)
    assert not plan.fits


def test_unknown_architecture_can_be_described_in_the_inventory() -> None:
    custom = {"mistral-small-24b": ArchSpec(params_b=23.6, layers=40, kv_heads=8, head_dim=128)}
    host = Host(address="10.0.0.8", overlay_ip="10.77.0.8", gpus=[GPU_24],
                serves=[Serve(name="ms", engine="ollama", model="mistral-small:24b", arch="mistral-small-24b",
                              quant="Q4_K_M", context=8192)])
    (plan,), problems = plan_host("box", host, custom)
    assert not problems
    assert plan.models[0].weights_gb == pytest.approx(23.6e9 * 4.85 / 8 / 2**30)


def test_unknown_architecture_without_numbers_is_a_clear_problem() -> None:
    host = Host(address="10.0.0.8", overlay_ip="10.77.0.8", gpus=[GPU_24],
                serves=[Serve(name="x", engine="ollama", model="mystery:70b", quant="Q4_K_M")])
    _, problems = plan_host("box", host, {})
    ((index, message),) = problems
    assert index == 0
    assert "unknown model 'mystery:70b'" in message and "models:" in message


def test_every_catalogue_entry_cites_its_source() -> None:
    for name, arch in CATALOGUE.items():
        assert arch.source.startswith(("https://", "estimate: layout of https://")), name


def test_llama_3_2_3b_q4_k_m_weights_match_llama_cpps_loader() -> None:
    # llama.cpp's loader for Llama 3.2 3B Instruct Q4_K_M: "model size = 1.87 GiB (5.01 BPW)"
    # (ollama/ollama#8310). The tag names no quant: Ollama's library serves Q4_K_M.
    from hearth.planner.vram import weights_gb

    found = find_arch(None, "llama3.2:3b", {})
    assert found is not None
    assert within(weights_gb(found[1], "q4_k_m"), 1.87), weights_gb(found[1], "q4_k_m")


def _write(tmp_path: Any, text: str) -> Any:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    return path


def test_seed_001_models_take_turns_on_one_12_gb_card(tmp_path: Any) -> None:
    from hearth.inventory import load_inventory
    from hearth.plan import plan_text

    inv = load_inventory(_write(tmp_path, seed001.box(8192)))
    (plan,), problems = plan_host("gpu-1", inv.hosts["gpu-1"], {})
    assert not problems and plan.takes_turns() and plan.fits
    sizes = sorted(m.resident_gb for m in plan.models)
    assert sum(sizes) > plan.gpu.usable_gb  # together they would not fit: the point of MAX_LOADED_MODELS=1
    assert plan.used_gb == pytest.approx(sizes[-1])  # the worst case is the larger one alone
    assert "(takes turns)" in plan_text(inv)


def test_without_the_cap_the_same_models_are_refused(tmp_path: Any) -> None:
    from hearth.inventory import InventoryError, load_inventory

    text = seed001.box(8192).replace("max_loaded_models: 1, ", "").replace(
        "max_loaded_models: 1", "")
    with pytest.raises(InventoryError) as caught:
        load_inventory(_write(tmp_path, text))
    assert "models do not fit RTX 5070 (loaded together)" in caught.value.lines[0]


def test_each_model_must_still_fit_alone(tmp_path: Any) -> None:
    from hearth.inventory import InventoryError, load_inventory

    with pytest.raises(InventoryError) as caught:
        load_inventory(_write(tmp_path, seed001.box(16384)))
    text = "\n".join(caught.value.lines)
    assert "deepseek-coder:6.7b does not fit RTX 5070 even loaded alone: 12.0 GiB of 11.5 usable" in text


def test_plan_and_deploy_agree_on_each_ollama_models_context(tmp_path: Any) -> None:
    from hearth.configs import ollama as configs
    from hearth.inventory import load_inventory

    text = seed001.box(4096).replace("max_loaded_models: 1", "max_loaded_models: 2")
    inv = load_inventory(_write(tmp_path, text.replace("vram_gb: 12", "vram_gb: 24")))
    served = int(configs.environment(inv, "gpu-1")["OLLAMA_CONTEXT_LENGTH"])
    (plan,), _ = plan_host("gpu-1", inv.hosts["gpu-1"], {})
    assert {m.context for m in plan.models} == {served} == {8192}


def test_plan_and_deploy_agree_on_each_ollama_models_parallel_sequences(tmp_path: Any) -> None:
    """OLLAMA_NUM_PARALLEL is the host's most slots, and Ollama loads every model with
    num_ctx x num_parallel of KV cache (Ollama's FAQ, "How does Ollama handle concurrent
    requests?"): a model with fewer slots of its own is planned with the host's."""
    from hearth.configs import ollama as configs
    from hearth.inventory import load_inventory

    text = seed001.box(4096).replace("max_loaded_models: 1", "max_loaded_models: 2")
    text = text.replace("routes: [local]}", "routes: [local], slots: 2}")
    inv = load_inventory(_write(tmp_path, text.replace("vram_gb: 12", "vram_gb: 24")))
    assert sorted(s.slots for s in inv.hosts["gpu-1"].serves) == [1, 2]
    parallel = int(configs.environment(inv, "gpu-1")["OLLAMA_NUM_PARALLEL"])
    (plan,), _ = plan_host("gpu-1", inv.hosts["gpu-1"], {})
    assert {m.full_context_sequences for m in plan.models} == {parallel} == {2}
    for m in plan.models:
        arch = CATALOGUE[m.arch]
        assert m.kv_gb == pytest.approx(2 * kv_cache_gb(arch, 8192, "auto"))
