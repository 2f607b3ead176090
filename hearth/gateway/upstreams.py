"""Runtime state of upstreams: HTTP session, concurrency cap, bounded queue, health."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

import aiohttp

from .config import UpstreamCfg

HEALTHY, DEGRADED, DOWN, ASLEEP, UNKNOWN, WAKING = (
    "healthy", "degraded", "down", "asleep", "unknown", "waking")
USABLE = frozenset((HEALTHY, DEGRADED, UNKNOWN))


class Upstream:
    """One upstream: a cap of ``slots`` concurrent requests and a FIFO of waiters.

    ``in_flight`` counts granted slots. A released slot is handed directly to the
    oldest waiter, so waiters are served in order and the cap is never exceeded.
    """

    def __init__(self, name: str, cfg: UpstreamCfg) -> None:
        self.name = name
        self.cfg = cfg
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[bool]] = deque()
        self.state = UNKNOWN
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.fails = 0
        self.cooldown_until = 0.0
        self.last_probe_at: float | None = None
        self.last_probe_ms: float | None = None
        self.keep_warm_until = 0.0
        self.session: aiohttp.ClientSession | None = None
        self.probe_now = asyncio.Event()

    # -- identity -----------------------------------------------------------------

    @property
    def slots(self) -> int:
        """The concurrency cap (the serve's slots)."""
        return self.cfg.slots

    @property
    def vision(self) -> bool:
        """Whether the upstream's model can see images."""
        return self.cfg.vision

    @property
    def sleeps(self) -> bool:
        """Whether the host sleeps and is woken by Wake-on-LAN."""
        return self.cfg.sleep.sleeps

    def usable(self) -> bool:
        """True if requests may be sent now (not down, asleep, or cooling down)."""
        return self.state in USABLE

    # -- session --------------------------------------------------------------------

    def ensure_session(self, connect_s: float) -> aiohttp.ClientSession:
        """The one keep-alive session (and connector) of this upstream."""
        if self.session is None or self.session.closed:
            conn = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=300)
            self.session = aiohttp.ClientSession(
                connector=conn,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_s),
                auto_decompress=False,
                # our own User-Agent, not aiohttp's: skip_auto_headers=("User-Agent",)
                # would put every request on aiohttp's slow header-merging path
                headers={"User-Agent": "hearth-gateway"},
            )
        return self.session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self.session is not None:
            await self.session.close()

    # -- capacity -------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody is queued ahead."""
        if self.in_flight < self.cfg.slots and not self.waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire_queued(self, max_waiters: int, timeout_s: float) -> str:
        """Wait for a slot; returns ``ok``, ``full`` (queue at bound) or ``timeout``."""
        if self.try_acquire():
            return "ok"
        if len(self.waiters) >= max_waiters:
            return "full"
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            async with asyncio.timeout(timeout_s):
                await fut
            return "ok"
        except TimeoutError:
            return self._abandon(fut, "timeout")
        except asyncio.CancelledError:
            self._abandon(fut, "cancelled")
            raise

    def _abandon(self, fut: asyncio.Future[bool], why: str) -> str:
        if fut.done() and not fut.cancelled():
            self.release()  # the slot was handed to us just as we gave up
        else:
            fut.cancel()
            with contextlib.suppress(ValueError):
                self.waiters.remove(fut)
        return why

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the pool."""
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return
        self.in_flight -= 1

    # -- health ---------------------------------------------------------------------

    def mark_failure(self, error: str, cooldown_s: float) -> None:
        """A request failed (5xx, connect error, timeout): down until a probe passes."""
        now = time.monotonic()
        self.last_error, self.last_error_at = error, time.time()
        if self.state != ASLEEP:
            self.state = DOWN
        self.cooldown_until = now + cooldown_s
        self.probe_now.set()

    def snapshot(self, drained: bool) -> dict[str, object]:
        """State for ``/admin/upstreams``."""
        return {
            "name": self.name,
            "engine": self.cfg.engine,
            "model": self.cfg.model,
            "base_url": self.cfg.base_url,
            "host": self.cfg.host,
            "state": "draining" if drained and self.state in USABLE else self.state,
            "in_flight": self.in_flight,
            "cap": self.cfg.slots,
            "queued": len(self.waiters),
            "vision": self.cfg.vision,
            "sleeps": self.cfg.sleep.sleeps,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_probe_ms": self.last_probe_ms,
            "keep_warm_until": (time.time() + self.keep_warm_until - time.monotonic()
                                if self.keep_warm_until > time.monotonic() else None),
        }
