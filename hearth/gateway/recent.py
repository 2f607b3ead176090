"""What the status page shows of the recent past: the last routing decisions with their
reasons, and each upstream's recent latencies (for a sparkline). Memory only, bounded."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

DECISIONS = 25
LATENCIES = 40


class Recent:
    """The last ``DECISIONS`` decisions and ``LATENCIES`` latencies per upstream."""

    def __init__(self) -> None:
        self.decisions: deque[dict[str, Any]] = deque(maxlen=DECISIONS)
        self.latency_ms: dict[str, deque[float]] = {}

    def record(self, *, route: str | None, upstream: str | None, status: int, reason: str,
               fallback: list[str], latency_s: float) -> None:
        """One finished request."""
        self.decisions.append({"at": time.time(), "route": route, "upstream": upstream, "status": status,
                               "reason": ";".join([reason, *fallback]) if fallback else reason,
                               "latency_ms": round(latency_s * 1000, 1)})
        if upstream is not None and status < 500:
            self.latency_ms.setdefault(upstream, deque(maxlen=LATENCIES)).append(latency_s * 1000)
