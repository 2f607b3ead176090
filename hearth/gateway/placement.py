"""Which card each upstream's model is on: the inventory's VRAM plan, for the gateway.

The gateway is told the placement ``hearth plan`` shows (``hearth.planner.vram.plan_host``),
not a second reading of the inventory, so the two cannot disagree about who shares a card.
A serve the planner does not place (``engine: openai``, a host without ``gpus:``) has no card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hearth.inventory import Inventory


def gpu_id(host: str, index: int) -> str:
    """A card's name, as ``hearth plan`` writes it: ``<host>/gpu<N>``."""
    return f"{host}/gpu{index}"


def gpu_placement(inv: Inventory) -> tuple[dict[tuple[str, int], tuple[str, float]], dict[str, dict[str, Any]]]:
    """``({(host, serve index): (card, resident GiB)}, {card: gateway gpus entry})``.

    Only cards with a model on them are listed. ``planned_gb`` is the plan's worst case on
    the card: every other engine's model plus the largest Ollama models its loaded-model
    cap allows (what validation checked fits).

    Example::

        placed, cards = gpu_placement(load_inventory("inventory/example.yml"))
        placed[("hands", 0)]  # ("hands/gpu0", 88.32): vLLM takes 0.92 of the 96 GB card
    """
    from hearth.planner.vram import plan_host  # the planner imports the inventory model

    placed: dict[tuple[str, int], tuple[str, float]] = {}
    cards: dict[str, dict[str, Any]] = {}
    for hname, host in inv.hosts.items():
        plans, _problems = plan_host(hname, host, inv.models)  # problems: refused by validation
        for plan in plans:
            card = gpu_id(hname, plan.index)
            taken = {i for (h, i) in placed if h == hname}
            for model in plan.models:
                index = next((i for i, s in enumerate(host.serves) if i not in taken
                              and s.name == model.serve and s.gpu == plan.index), None)
                if index is None:
                    continue
                taken.add(index)
                placed[(hname, index)] = (card, round(model.resident_gb, 2))
            if plan.models:
                gpu = plan.gpu
                cards[card] = {"host": hname, "index": plan.index, "model": gpu.model,
                               "vram_gb": gpu.vram_gb, "usable_gb": gpu.usable_gb,
                               "planned_gb": round(plan.used_gb, 2),
                               "unified_memory": gpu.unified_memory}
    return placed, cards
