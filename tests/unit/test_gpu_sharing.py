"""Issue 21.4: `hearth plan` and the gateway agree on which upstreams share which card.

The plan side is read from `hearth plan`'s own VRAM table (the text a person reads), the
gateway side from the policy the deploy renders (`gateway_config_from_inventory`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.gateway.config import parse_config
from hearth.gateway.from_inventory import gateway_config_from_inventory, upstream_name
from hearth.inventory import Inventory, load_inventory
from hearth.plan import gpu_plans, plan_text

REPO = Path(__file__).resolve().parents[2]


def _mixed(data: dict[str, Any]) -> None:
    """Seed 003's shape on example.yml's 16 GB card: vLLM holds its share from start and two
    Ollama models take turns in what it leaves (one loaded at a time)."""
    small = {"engine": "ollama", "context": 4096, "slots": 1, "max_loaded_models": 1}
    data["hosts"]["eyes"]["serves"] += [
        {"name": "llama3.2:3b", "model": "llama3.2:3b", "routes": ["small"], **small},
        {"name": "qwen2.5-coder:1.5b", "model": "qwen2.5-coder:1.5b", "routes": ["small-code"], **small},
    ]


def _inventories(write_inventory: Callable[..., Path]) -> list[Inventory]:
    return [load_inventory(REPO / "inventory" / f) for f in ("example.yml", "lab.yml", "lab2.yml")] + [
        load_inventory(write_inventory(_mixed, "mixed.yml"))]


def _plan_cards(inv: Inventory) -> dict[str, set[str]]:
    """Card -> upstreams, read from the VRAM table of `hearth plan`'s text."""
    lines = plan_text(inv).splitlines()
    top = lines.index("VRAM budget per GPU (GiB)")
    header, dashes = lines[top + 1], lines[top + 2]
    cols, pos = [], 0
    for width in (len(d) for d in dashes.split("  ")):
        cols.append((pos, pos + width))
        pos += width + 2
    names = [header[a:b].strip() for a, b in cols]
    cards: dict[str, set[str]] = {}
    for line in lines[top + 3:]:
        if not line.strip():
            break
        row = dict(zip(names, (line[a:b].strip() for a, b in cols), strict=True))
        if not row["gpu"]:  # the cap and headroom rows
            continue
        host = row["gpu"].split("/")[0]
        serves = inv.hosts[host].serves
        index = next(i for i, s in enumerate(serves) if s.name == row["model"])
        cards.setdefault(row["gpu"], set()).add(upstream_name(host, index, len(serves)))
    return cards


def _gateway(inv: Inventory) -> Any:
    return gateway_config_from_inventory(inv, resolve=lambda ref: f"key-for-{ref}")


def test_plan_and_gateway_agree_on_who_shares_which_card(write_inventory: Callable[..., Path]) -> None:
    for inv in _inventories(write_inventory):
        cfg = _gateway(inv)
        gateway: dict[str, set[str]] = {}
        for name, u in cfg.upstreams.items():
            if u.gpu is not None:
                gateway.setdefault(u.gpu, set()).add(name)
        assert gateway == _plan_cards(inv), inv.name
        assert set(cfg.gpus) == set(gateway), inv.name
        for plan in gpu_plans(inv):  # the card's size and the plan's worst case, as planned
            card = cfg.gpus.get(f"{plan.host}/gpu{plan.index}")
            if plan.models:
                assert card is not None and (card.host, card.index) == (plan.host, plan.index)
                assert card.usable_gb == plan.gpu.usable_gb and card.planned_gb == round(plan.used_gb, 2)


def test_the_gateway_caps_are_the_plans(write_inventory: Callable[..., Path]) -> None:
    """What the gateway lets run at once on a card is within what the plan sized: each
    model's slots (llama.cpp engines: the KV cache is planned for at least that many
    sequences; an Ollama model gets the host's OLLAMA_NUM_PARALLEL) and, for an
    Ollama server, the loaded-model cap the plan's worst case assumes."""
    for inv in _inventories(write_inventory):
        cfg = _gateway(inv)
        by_card = {f"{p.host}/gpu{p.index}": p for p in gpu_plans(inv)}
        for name, u in cfg.upstreams.items():
            if u.gpu is None:
                continue
            plan = by_card[u.gpu]
            model = next(m for m in plan.models if m.serve == u.model)
            assert u.gpu_gb == round(model.resident_gb, 2)
            if u.engine != "vllm":  # never more at once than the KV cache was planned for
                assert u.slots <= model.full_context_sequences, name
            if u.engine == "ollama":
                cap = plan.max_loaded or len(plan.ollama_models())
                assert u.max_loaded_models == cap, name


def test_the_mixed_card(write_inventory: Callable[..., Path]) -> None:
    """vLLM and two Ollama models on one card: all three share it; the two Ollama models
    also share one server (they take turns), the vLLM serve does not."""
    cfg = _gateway(load_inventory(write_inventory(_mixed, "mixed.yml")))
    on_card = {n for n, u in cfg.upstreams.items() if u.gpu == "eyes/gpu0"}
    assert on_card == {"eyes-0", "eyes-1", "eyes-2"}
    assert cfg.upstreams["eyes-0"].engine == "vllm" and cfg.upstreams["eyes-0"].server is None
    assert {cfg.upstreams[n].server for n in ("eyes-1", "eyes-2")} == {"eyes:ollama"}
    assert cfg.gpus["eyes/gpu0"].model == "RTX 4090 Laptop GPU"
    assert cfg.gpus["eyes/gpu0"].planned_gb == pytest.approx(12.5 + 2.4, abs=0.1)  # vLLM + largest Ollama


def test_a_serve_without_a_card_has_none() -> None:
    """An `engine: openai` serve, or a host without gpus:, is placed on no card."""
    cfg = _gateway(load_inventory(REPO / "inventory" / "example.yml"))
    inv = load_inventory(REPO / "inventory" / "example.yml")
    for hname, host in inv.hosts.items():
        for i, s in enumerate(host.serves):
            name = upstream_name(hname, i, len(host.serves))
            assert (cfg.upstreams[name].gpu is None) == (s.engine == "openai" or not host.gpus)


def test_a_card_named_but_not_described_still_groups_its_upstreams() -> None:
    """A hand-written policy may name a card without a ``gpus`` entry (or take one
    upstream out of a rendered policy): the sharing is by name, labels from the name."""
    from hearth.gateway.cards import card_labels, cards, gpus_snapshot, shares_gpu_with
    from hearth.gateway.upstreams import Upstream

    up = {"engine": "vllm", "base_url": "http://127.0.0.1:1", "gpu": "box/gpu1"}
    cfg = parse_config({"upstreams": {"a": {**up, "model": "m"}, "b": {**up, "model": "n", "engine": "ollama"},
                                      "c": {**up, "model": "o", "gpu": "box/gpu0"}},
                        "routes": {"r": {"upstreams": ["a", "b", "c"]}}, "routing": {"default_route": "r"},
                        "gpus": {"box/gpu0": {"host": "box", "index": 0, "vram_gb": 24, "usable_gb": 23}}})
    ups = {n: Upstream(n, u) for n, u in cfg.upstreams.items()}
    assert shares_gpu_with(ups["a"], ups) == ["b"] and shares_gpu_with(ups["c"], ups) == []
    assert cards(cfg, ups) == ["box/gpu0", "box/gpu1"]
    snap = gpus_snapshot(cfg, ups)
    assert snap["box/gpu1"]["upstreams"] == ["a", "b"] and snap["box/gpu1"]["host"] == "box"
    assert snap["box/gpu0"]["usable_gb"] == 23
    assert card_labels("box/gpu1", None) == ("box", "1") and card_labels("odd", None) == ("", "odd")
