"""Wake outcomes (issue 13 item 3): a wake that fails is loud, cold starts are measured.

Seed 000's NIC silently lost Wake-on-LAN for two days: every magic packet went into
the void. Here each wake ends in ``succeeded`` (the first good probe came within the
host's ``sleep.ready_timeout_s``) or ``failed``. Consecutive failures are counted per
host (one box, however many upstreams it serves) and reset by a success; each failure
is logged at ERROR naming the host, its MAC and the broadcast address and port used.
Cold starts (magic packet to the first good probe) go into a histogram and into
``/admin/upstreams``.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .upstreams import Upstream

log = logging.getLogger("hearth.gateway.wake")

COLD_START_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
RECENT = 20  # cold starts kept per upstream for /admin/upstreams


class _Consecutive(Collector):
    def __init__(self, tracker: WakeTracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("hearth_wake_consecutive_failures",
                              "Failed wakes in a row per host (0 after a wake that worked)",
                              labels=["host", "mac", "broadcast"])
        for host, (n, mac, broadcast) in sorted(self.tracker.consecutive.items()):
            g.add_metric([host, mac, broadcast], n)
        yield g


class WakeTracker:
    """Per-host consecutive failures and per-upstream wake history."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter("hearth_wake_failures", "Wakes that did not bring the host up in time",
                                ["host"], registry=registry)
        self.cold_start = Histogram("hearth_cold_start_seconds",
                                    "Magic packet to the first good probe, for wakes that worked",
                                    ["upstream"], buckets=COLD_START_BUCKETS, registry=registry)
        self.consecutive: dict[str, tuple[int, str, str]] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.recent: dict[str, deque[float]] = {}
        registry.register(_Consecutive(self))

    @staticmethod
    def _host(up: Upstream) -> str:
        return up.cfg.host or up.name

    def succeeded(self, up: Upstream, seconds: float, broadcast: str) -> None:
        """The host answered ``seconds`` after the magic packet."""
        host = self._host(up)
        before = self.consecutive.get(host, (0, "", ""))[0]
        self.consecutive[host] = (0, str(up.cfg.sleep.mac), broadcast)
        self.cold_start.labels(up.name).observe(seconds)
        self.recent.setdefault(up.name, deque(maxlen=RECENT)).append(round(seconds, 3))
        self.last[up.name] = {"at": time.time(), "seconds": round(seconds, 3), "ok": True, "error": None}
        if before:
            log.warning("wake of host %s (upstream %s) worked after %d failed wake(s): %.1fs", host, up.name,
                        before, seconds)

    def failed(self, up: Upstream, seconds: float, broadcast: str, error: str) -> None:
        """The wake did not bring the host up (or no packet could be sent)."""
        host = self._host(up)
        n = self.consecutive.get(host, (0, "", ""))[0] + 1
        mac = str(up.cfg.sleep.mac)
        self.consecutive[host] = (n, mac, broadcast)
        self.failures.labels(host).inc()
        self.last[up.name] = {"at": time.time(), "seconds": round(seconds, 3), "ok": False, "error": error}
        log.error("wake FAILED: host %s (upstream %s), MAC %s, magic packet to %s: %s; %d failed wake(s) in a "
                  "row: check the NIC's Wake-on-LAN setting, the MAC and the broadcast address", host, up.name,
                  mac, broadcast, error, n)

    def snapshot(self, up: Upstream) -> dict[str, Any] | None:
        """The ``wake`` block of ``/admin/upstreams`` (None for a host that never sleeps)."""
        if not up.sleeps:
            return None
        recent = list(self.recent.get(up.name, ()))
        return {
            "consecutive_failures": self.consecutive.get(self._host(up), (0, "", ""))[0],
            "last": self.last.get(up.name),
            "cold_start_s": {
                "count": len(recent),
                "median": round(statistics.median(recent), 3) if recent else None,
                "max": max(recent) if recent else None,
                "recent": recent,
            },
        }
