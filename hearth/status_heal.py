"""The healing timer's actions in `hearth status` (issue 23 item 5): read from the
monitoring host's Prometheus, which scrapes every GPU host's ``hearth_heal_*`` metrics
(``hearth.telemetry.heal``). Nothing on the GPU hosts is touched: a sleeping box's last
figures stay in Prometheus (shown with when its timer last ran).

Per serve unit: up at the last run, restarts and pages in the last 24 hours, restart
budget exhausted; per host: CUDA recoveries in 24 hours and when the timer last ran.
Without a monitoring host the section says so (the metrics are only in each node exporter).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from hearth.inventory import Inventory
from hearth.telemetry.heal import CUDA

WINDOW = "24h"
# last_over_time: a box asleep now still shows what its timer last reported
QUERIES = {
    "up": f"last_over_time(hearth_heal_serve_up[{WINDOW}])",
    "restarts": f"round(increase(hearth_heal_restarts_total[{WINDOW}]))",
    "pages": f"round(increase(hearth_heal_pages_total[{WINDOW}]))",
    "exhausted": f"last_over_time(hearth_heal_budget_exhausted[{WINDOW}])",
    "cuda": f"round(increase(hearth_heal_cuda_recoveries_total[{WINDOW}]))",
    "last_run": f"last_over_time(hearth_heal_last_run_timestamp_seconds[{WINDOW}])",
}


def prometheus_url(inv: Inventory) -> str | None:
    mon = inv.monitoring
    if mon is None:
        return None
    host = inv.hosts[mon.host]
    return f"http://{host.overlay_ip or host.address}:{mon.prometheus_port}"


def collect(inv: Inventory, get: Callable[..., Any]) -> dict[str, Any]:
    """{"source", "error", "serves": [...], "hosts": [...]} (``get(url)`` answers JSON)."""
    url = prometheus_url(inv)
    out: dict[str, Any] = {"source": url, "error": None, "serves": [], "hosts": []}
    if url is None:
        out["error"] = "no monitoring host in the inventory"
        return out
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for key, expr in QUERIES.items():
            answer = get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
            results[key] = answer["data"]["result"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        out["error"] = f"Prometheus: {type(exc).__name__}: {exc}"
        return out

    def by(key: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(r["metric"].get(x, "") for x in labels): float(r["value"][1]) for r in results[key]}

    up, restarts, pages = by("up", "host", "unit"), by("restarts", "host", "unit"), by("pages", "host", "unit")
    exhausted = by("exhausted", "host", "unit")
    for host, unit in sorted(up):
        out["serves"].append({"host": host, "unit": unit, "up": up[(host, unit)] >= 1,
                              "restarts_24h": int(restarts.get((host, unit), 0)),
                              "pages_24h": int(pages.get((host, unit), 0)),
                              "budget_exhausted": exhausted.get((host, unit), 0) >= 1})  # fmt: skip
    cuda, last = by("cuda", "host"), by("last_run", "host")
    for (host,), ts in sorted(last.items()):
        out["hosts"].append({"host": host, "last_run": ts, "cuda_recoveries_24h": int(cuda.get((host,), 0)),
                             "cuda_pages_24h": int(pages.get((host, CUDA), 0))})  # fmt: skip
    return out


def render(healing: dict[str, Any] | None, now: float | None = None) -> list[str]:
    """The section's lines for `hearth status`'s screen."""
    if healing is None:
        return []
    now = time.time() if now is None else now
    lines = ["", f"healing (last {WINDOW}, from Prometheus)"]
    if healing["error"]:
        return [*lines, f"  unknown: {healing['error']}"]
    if not healing["serves"]:
        return [*lines, "  no healing timer reports (no GPU host serves, or none scraped yet)"]
    lines.append(f"  {'host':<16} {'unit':<28} {'serve':<6} {'restarts':<9} {'pages':<6} budget")
    for s in healing["serves"]:
        lines.append(f"  {s['host']:<16} {s['unit']:<28} {'up' if s['up'] else 'DOWN':<6} {s['restarts_24h']:<9} "
                     f"{s['pages_24h']:<6} {'EXHAUSTED' if s['budget_exhausted'] else 'ok'}")  # fmt: skip
    for h in healing["hosts"]:
        ago = max(0.0, now - h["last_run"])
        cuda = f", CUDA recoveries {h['cuda_recoveries_24h']}" if h["cuda_recoveries_24h"] else ""
        cuda += f", CUDA pages {h['cuda_pages_24h']}" if h["cuda_pages_24h"] else ""
        lines.append(f"  {h['host']:<16} timer ran {ago:.0f}s ago{cuda}")
    return lines
