"""Issue 21.1: which Ollama models one server holds at once (`hearth plan`), and the
loaded-model cap that the deploy writes, the planner plans with and the gateway admits by
(hearth.planner.ollama_server: the inventory's ``max_loaded_models``, else Ollama 0.14.0's
own rule, 3 per GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import ollama as configs
from hearth.gateway.from_inventory import gateway_config_from_inventory, upstream_name
from hearth.inventory import Inventory, InventoryError, load_inventory
from hearth.inventory.model import Gpu
from hearth.plan import gpu_plans, plan_text
from hearth.planner.ollama_server import MODELS_PER_GPU, max_loaded_models
from hearth.planner.vram import GpuPlan, ModelPlan, plan_host
from tests.unit import seed001

REPO = Path(__file__).resolve().parents[2]

SEED_001 = seed001.box()

THIRD = """      - {name: "qwen2.5-coder:1.5b", engine: ollama, model: "qwen2.5-coder:1.5b", context: 8192,
         keep_alive: 5m, max_loaded_models: 1, routes: [local-small]}
routing:"""


def _load(tmp_path: Path, text: str) -> Inventory:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    return load_inventory(path)


def _held(inv: Inventory) -> list[str]:
    """The lines of `hearth plan`'s "held at once" section."""
    lines = plan_text(inv).splitlines()
    if not any(line.startswith("Ollama models held at once") for line in lines):
        return []
    start = next(i for i, line in enumerate(lines) if line.startswith("Ollama models held at once")) + 1
    return lines[start:lines.index("", start)]


def test_seed_001s_operator_sees_one_model_at_a_time(tmp_path: Path) -> None:
    inv = _load(tmp_path, SEED_001)
    (plan,), problems = plan_host("gpu-1", inv.hosts["gpu-1"], {})
    assert not problems and plan.fits
    assert [[m.serve for m in models] for models in plan.co_resident()] == [["qwen3.5:9b"], ["deepseek-coder:6.7b"]]
    assert _held(inv) == ["  gpu-1/gpu0: qwen3.5:9b or deepseek-coder:6.7b, one at a time (max_loaded_models 1)"]


def test_example_yml_shows_its_seed_001_box_and_no_other_card() -> None:
    inv = load_inventory(REPO / "inventory" / "example.yml")
    assert _held(inv) == ["  gpu-1/gpu0: qwen3.5:9b or deepseek-coder:6.7b, one at a time (max_loaded_models 1)"]


def test_three_models_two_loaded_show_the_pairs_with_their_sizes(tmp_path: Path) -> None:
    text = SEED_001.replace("vram_gb: 12", "vram_gb: 24").replace("routing:", THIRD)
    inv = _load(tmp_path, text.replace("max_loaded_models: 1", "max_loaded_models: 2"))
    (plan,), _ = plan_host("gpu-1", inv.hosts["gpu-1"], {})
    size = {m.serve: m.resident_gb for m in plan.models}
    pairs = [("qwen3.5:9b", "deepseek-coder:6.7b"), ("qwen3.5:9b", "qwen2.5-coder:1.5b"),
             ("deepseek-coder:6.7b", "qwen2.5-coder:1.5b")]
    assert [tuple(m.serve for m in models) for models in plan.co_resident()] == pairs
    listed = " | ".join(f"{a} + {b} ({size[a] + size[b]:.1f} GiB)" for a, b in pairs)
    assert _held(inv) == [f"  gpu-1/gpu0: 2 at a time: {listed} (max_loaded_models 2)"]


def _model(name: str, resident: float, engine: str = "ollama") -> ModelPlan:
    return ModelPlan("box", name, engine, "arch", resident, 0.0, 0.0, resident, 1.0)


def test_only_the_sets_that_fit_beside_the_cards_other_engines_are_listed() -> None:
    card = Gpu(model="RTX 4080", vram_gb=16, reserved_gb=0.5)
    plan = GpuPlan("box", 0, card, [_model("a", 7.0), _model("b", 6.0), _model("c", 4.0)], max_loaded=2)
    # 15.5 GiB usable: every pair fits; beside a vLLM share of 3.5 GiB, a + b (13) does not
    assert [[m.serve for m in s] for s in plan.co_resident()] == [["a", "b"], ["a", "c"], ["b", "c"]]
    plan.models.append(_model("vllm", 3.5, "vllm"))
    assert [[m.serve for m in s] for s in plan.co_resident()] == [["a", "c"], ["b", "c"]]
    plan.models.append(_model("huge", 12.5))
    assert "huge" not in {m.serve for s in plan.co_resident() for m in s}  # not even alone


def test_the_lab_shapes_list_what_they_hold() -> None:
    assert _held(load_inventory(REPO / "inventory" / "lab.yml")) == []  # one Ollama model per server
    assert _held(load_inventory(REPO / "inventory" / "lab2.yml")) == [
        "  den-mini/gpu0: qwen2.5:7b + qwen2.5-coder:1.5b, all loaded together, 6.9 GiB (max_loaded_models 2)",
        "  den-pi (no GPU): qwen2.5:0.5b or qwen2.5-coder:0.5b, one at a time (max_loaded_models 1)",
    ]


# (b) the cap: what the deploy writes is what the planner and the gateway use


def _uncapped(data: dict[str, Any], gpus: int, models: int = 2) -> None:
    """example.yml's seed-001 box with ``models`` small models, no max_loaded_models, ``gpus`` cards."""
    box = data["hosts"]["gpu-1"]
    box["gpus"] = [{"model": "RTX 3090", "vram_gb": 24, "reserved_gb": 0.5}] * gpus
    routes = [serve.get("routes", []) for serve in box["serves"]]  # the example's routes stay served
    box["serves"] = [{"name": f"small-{i}:1.5b", "engine": "ollama", "model": "qwen2.5-coder:1.5b",
                      "context": 4096, "routes": routes[i] if i < len(routes) else [],
                      "gpu": i % max(gpus, 1)} for i in range(models)]  # fmt: skip


@pytest.mark.parametrize("gpus,cap", [(1, 3), (2, 6), (0, 3)])
def test_without_a_cap_the_deploy_writes_ollamas_own_rule(
    write_inventory: Callable[..., Path], gpus: int, cap: int
) -> None:
    inv = load_inventory(write_inventory(lambda d: _uncapped(d, gpus)))
    assert cap == MODELS_PER_GPU * max(gpus, 1)
    assert configs.environment(inv, "gpu-1")["OLLAMA_MAX_LOADED_MODELS"] == str(cap)


def test_four_models_on_one_card_without_a_cap_take_turns_three_at_a_time(
    write_inventory: Callable[..., Path],
) -> None:
    inv = load_inventory(write_inventory(lambda d: _uncapped(d, 1, models=4)))
    (plan,) = [p for p in gpu_plans(inv) if p.host == "gpu-1"]
    assert plan.max_loaded == 3 and plan.takes_turns()
    assert plan.used_gb == pytest.approx(sum(sorted(m.resident_gb for m in plan.models)[-3:]))
    (line,) = [line for line in _held(inv) if line.startswith("  gpu-1/")]
    assert line.startswith("  gpu-1/gpu0: 3 at a time: small-0:1.5b + small-1:1.5b + small-2:1.5b (")
    assert line.endswith("(max_loaded_models 3, Ollama's 3 per GPU)")


def test_more_warm_models_than_ollamas_default_cap_are_refused(write_inventory: Callable[..., Path]) -> None:
    def four_warm(data: dict[str, Any]) -> None:
        _uncapped(data, 1, models=4)
        for serve in data["hosts"]["gpu-1"]["serves"]:
            serve["keep_alive"] = "-1"

    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(four_warm))
    assert "4 models are to stay loaded for good (keep_alive -1) but max_loaded_models is 3" in "\n".join(
        caught.value.lines)


def _mixed(data: dict[str, Any]) -> None:
    """Seed 003's shape (tests/unit/test_gpu_sharing.py): vLLM and two Ollama models on one card."""
    small = {"engine": "ollama", "context": 4096, "slots": 1, "max_loaded_models": 1}
    data["hosts"]["eyes"]["serves"] += [
        {"name": "llama3.2:3b", "model": "llama3.2:3b", "routes": ["small"], **small},
        {"name": "qwen2.5-coder:1.5b", "model": "qwen2.5-coder:1.5b", "routes": ["small-code"], **small},
    ]


def test_deploy_planner_and_gateway_use_the_same_cap(
    tmp_path: Path, write_inventory: Callable[..., Path]
) -> None:
    inventories = [load_inventory(REPO / f) for f in (
        "inventory/example.yml", "inventory/lab.yml", "inventory/lab2.yml", "tests/lab/kinds.yml")]
    inventories += [_load(tmp_path, SEED_001), load_inventory(write_inventory(_mixed, "mixed.yml")),
                    load_inventory(write_inventory(lambda d: _uncapped(d, 2, models=3), "uncapped.yml"))]
    seen = 0
    for inv in inventories:
        upstreams = gateway_config_from_inventory(inv, resolve=lambda ref: f"key-{ref}").upstreams
        for name, host in inv.hosts.items():
            serves = configs.ollama_serves(inv, name)
            if not serves:
                continue
            seen += 1
            cap = max_loaded_models(host)
            assert configs.environment(inv, name)["OLLAMA_MAX_LOADED_MODELS"] == str(cap), name
            assert {p.max_loaded for p in gpu_plans(inv) if p.host == name} <= {cap}, name
            for i, serve in enumerate(host.serves):
                if serve.engine == "ollama":
                    assert upstreams[upstream_name(name, i, len(host.serves))].max_loaded_models == cap
    assert seen >= 8
