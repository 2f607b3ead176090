"""Cards shared by upstreams of any engine: who is on which GPU and what holds it now.

The placement comes from the inventory's VRAM plan (``placement.py``). What the gateway
does with it (docs/gateway.md, "Cards shared by several engines"): it shows the sharing
(``/admin/upstreams``, metrics, ``hearth status``) and adds no card-wide admission of its
own: a vLLM serve reserves its ``gpu_memory_utilization`` share when it starts and never
swaps, the plan proves the Ollama models that can be resident together fit in what the
other engines leave, and the caps that keep work within that plan are already enforced
per upstream (its planned ``slots``) and per Ollama server (``ServerGroup``).
"""

from __future__ import annotations

import re
from typing import Any

from .config import GatewayConfig, GpuCfg
from .upstreams import ASLEEP, DEGRADED, HEALTHY, Upstream

RESERVES_AT_START = frozenset({"vllm"})  # holds its share from start to stop: never swaps
_CARD_RE = re.compile(r"^(.+)/gpu(\d+)$")


def holds_memory(u: Upstream) -> bool | None:
    """Whether the upstream's model occupies its card now (None: not known).

    Ollama: ``/api/ps`` (the health probe). vLLM: while its server answers (its share is
    taken at start). A sleeping host holds nothing.
    """
    if u.state == ASLEEP:
        return False
    if u.cfg.engine == "ollama":
        return u.loaded
    if u.cfg.engine in RESERVES_AT_START and u.state in (HEALTHY, DEGRADED):
        return True
    return None


def shares_gpu_with(u: Upstream, ups: dict[str, Upstream]) -> list[str]:
    """The other upstreams placed on ``u``'s card, any engine."""
    if u.cfg.gpu is None:
        return []
    return [o.name for o in ups.values() if o is not u and o.cfg.gpu == u.cfg.gpu]


def card_labels(card: str, described: GpuCfg | None) -> tuple[str, str]:
    """(host, gpu index) for metrics, as node telemetry labels the card: from ``gpus``, else
    from a ``<host>/gpu<N>`` name, else ("", the name)."""
    if described is not None:
        return described.host, str(described.index)
    m = _CARD_RE.match(card)
    return (m.group(1), m.group(2)) if m else ("", card)


def cards(cfg: GatewayConfig, ups: dict[str, Upstream]) -> list[str]:
    """Every card: those described under ``gpus`` and those only named by an upstream."""
    named = [u.cfg.gpu for u in ups.values() if u.cfg.gpu is not None]
    return list(dict.fromkeys([*cfg.gpus, *named]))


def gpus_snapshot(cfg: GatewayConfig, ups: dict[str, Upstream]) -> dict[str, dict[str, Any]]:
    """Per card for ``/admin/upstreams``: its plan, its upstreams, what holds it, what runs."""
    out: dict[str, dict[str, Any]] = {}
    for card in cards(cfg, ups):
        g = cfg.gpus.get(card)
        on = [u for u in ups.values() if u.cfg.gpu == card]
        holding = [u for u in on if holds_memory(u)]
        host, index = card_labels(card, g)
        out[card] = {
            **(g.model_dump() if g is not None else {"host": host, "index": int(index) if index.isdigit() else None}),
            "upstreams": [u.name for u in on],
            "engines": sorted({u.cfg.engine for u in on}),
            "holding": [u.name for u in holding],
            "holding_gb": round(sum(u.cfg.gpu_gb or 0.0 for u in holding), 2),
            "in_flight": sum(u.in_flight for u in on),
            "queued": sum(len(u.waiters) for u in on),
        }
    return out
