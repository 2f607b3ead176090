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


class ServerGroup:
    """Upstreams served by one engine process (one Ollama server) that loads at most
    ``max_loaded`` of their models at a time.

    A request for a model that is not answering now is admitted only while fewer than
    ``max_loaded`` of the group's models are answering; otherwise it waits (FIFO across
    the group, so models take turns and none starves) instead of making the server
    swap models under a running request.
    """

    def __init__(self, key: str, max_loaded: int) -> None:
        self.key, self.max_loaded = key, max_loaded
        self.members: list[Upstream] = []
        self.queue: deque[tuple[Upstream, asyncio.Future[bool]]] = deque()
        self.loaded: list[str] = []  # member names believed loaded (from /api/ps, then use)

    def running(self) -> int:
        """How many of the group's models are answering requests now."""
        return sum(1 for u in self.members if u.in_flight > 0)

    def admits(self, up: Upstream) -> bool:
        """Whether ``up`` may start one more request without a swap under a running one."""
        return up.in_flight < up.cfg.slots and (up.in_flight > 0
                                                or self.running() < self.max_loaded)

    def queued(self) -> bool:
        """Whether a live request waits in the group's queue."""
        while self.queue and self.queue[0][1].done():
            self.queue.popleft()
        return bool(self.queue)

    def dispatch(self) -> None:
        """Hand slots to the oldest waiters while the head of the queue can start."""
        while self.queued():
            up, fut = self.queue[0]
            if not self.admits(up):
                return
            self.queue.popleft()
            with contextlib.suppress(ValueError):
                up.waiters.remove(fut)
            up.in_flight += 1
            fut.set_result(True)

    def served(self, name: str) -> None:
        """``name`` answered: it is loaded now, pushing out the least recent beyond the cap."""
        self.loaded = [name, *[n for n in self.loaded if n != name]][: self.max_loaded]


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
        self.group: ServerGroup | None = None
        self.loaded: bool | None = None  # from the engine's /api/ps (None: not known)
        self.loaded_until: str | None = None
        self.swaps = 0
        self.last_swap_s: float | None = None
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
            # A box that sleeps gets no kept-alive connections: one that suspends itself
            # (hearth-idle) leaves a pooled connection that looks open and answers nothing,
            # and a request sent on it would wait its whole deadline instead of failing to
            # connect, which is what tells the gateway to wake the box.
            conn = (aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, force_close=True) if self.sleeps
                    else aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=300))
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
        g = self.group
        if g is not None:
            if not g.queued() and g.admits(self):
                self.in_flight += 1
                return True
            return False
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
        if self.group is not None:
            self.group.queue.append((self, fut))
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
            if self.group is not None:
                self.group.dispatch()  # a waiter at the head may have blocked others
        return why

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the pool."""
        if self.group is not None:
            self.in_flight -= 1
            self.group.dispatch()
            return
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return
        self.in_flight -= 1

    def blocked_by_server(self) -> bool:
        """A free slot of its own, but its server is answering for other models."""
        g = self.group
        return g is not None and self.in_flight < self.cfg.slots and (
            g.queued() or not g.admits(self))

    def begin_swap_watch(self) -> tuple[float, bool, bool] | None:
        """Before a request goes out: (start, whether another model is loaded instead,
        whether this request unloads its model after the answer: keep_alive 0)."""
        g = self.group
        if g is None:
            return None
        from .ollama import keep_alive_for

        return (time.perf_counter(), bool(g.loaded) and self.name not in g.loaded,
                keep_alive_for(self) == 0)

    def end_swap_watch(self, watch: tuple[float, bool, bool] | None, status: int,
                       _tr: object = None) -> None:
        """The first byte arrived: a swap's cost is the time it took (unload + load +
        the first token), recorded per model."""
        if watch is None or status != 200 or self.group is None:
            return
        t0, swap, unloads = watch
        if swap:
            self.swaps += 1
            self.last_swap_s = time.perf_counter() - t0
        self.group.served(self.name)
        if unloads:  # gone after this answer: the next model of the server is a load, not a swap
            self.group.loaded.remove(self.name)

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
            "keep_alive": self.cfg.keep_alive,
            "loaded": self.loaded,
            "loaded_until": self.loaded_until,
            "shares_server_with": ([u.name for u in self.group.members if u is not self]
                                   if self.group else []),
            "max_loaded_models": self.group.max_loaded if self.group else None,
            "swaps": self.swaps,
            "last_swap_s": self.last_swap_s,
            "gpu": self.cfg.gpu,
            "gpu_gb": self.cfg.gpu_gb,
        }


def link_groups(upstreams: dict[str, Upstream]) -> None:
    """Put upstreams that share a server (same ``server``, else an Ollama upstream's
    ``base_url``) and have a ``max_loaded_models`` into one :class:`ServerGroup`."""
    keys: dict[str, list[Upstream]] = {}
    for u in upstreams.values():
        key = u.cfg.server or (u.cfg.base_url if u.cfg.engine == "ollama" else None)
        if key and u.cfg.max_loaded_models:
            keys.setdefault(key, []).append(u)
    old = {u.group.key: u.group for u in upstreams.values() if u.group is not None}
    for u in upstreams.values():
        u.group = None
    for key, members in keys.items():
        if len(members) < 2:
            continue
        g = old.get(key) or ServerGroup(key, 1)
        g.max_loaded = min(m.cfg.max_loaded_models or 1 for m in members)
        g.members = members
        for m in members:
            m.group = g
