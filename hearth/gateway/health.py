"""Health probes (cheap endpoints only, never a generation) and Wake-on-LAN."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import wakeonlan

from .config import GatewayConfig
from .ollama import FOREVER, keep_alive_for, keep_alive_seconds
from .upstreams import ASLEEP, DEGRADED, DOWN, HEALTHY, WAKING, Upstream
from .wakes import WakeTracker

log = logging.getLogger("hearth.gateway.health")

PROBE_PATHS = {"ollama": "/api/tags", "vllm": "/v1/models", "lmstudio": "/v1/models",
               "openai": "/v1/models"}


def probe_path(engine: str) -> str:
    """The cheap endpoint probed for an engine."""
    return PROBE_PATHS.get(engine, "/v1/models")


def _lists_model(data: Any, model: str) -> bool:
    if not isinstance(data, dict):
        return False
    items = data.get("data") or data.get("models") or []
    names = set()
    for it in items if isinstance(items, list) else []:
        if isinstance(it, dict):
            names.update(str(it.get(k)) for k in ("id", "name", "model") if it.get(k))
    return model in names or f"{model}:latest" in names


class Health:
    """Per-upstream background probers and the wake coordinator."""

    def __init__(self, get_cfg: Callable[[], GatewayConfig],
                 on_wake: Callable[[str], None] | None = None,
                 wake_log: WakeTracker | None = None) -> None:
        self.get_cfg = get_cfg
        self.on_wake = on_wake or (lambda _n: None)
        self.wake_log = wake_log
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.wakes: dict[str, asyncio.Task[bool]] = {}
        self.wake_waiters: dict[str, int] = {}
        self.rounds = 0
        self.upstreams: dict[str, Upstream] = {}
        self.warming: set[asyncio.Task[None]] = set()

    # -- probing --------------------------------------------------------------------

    async def probe_once(self, up: Upstream) -> tuple[bool, bool, str | None]:
        """GET the cheap endpoint: (reachable, model listed, error)."""
        cfg = self.get_cfg()
        own = up.cfg.timeouts
        sess = up.ensure_session(own.connect_s or cfg.timeouts.connect_s)
        url = up.cfg.base_url + probe_path(up.cfg.engine)
        t0 = time.perf_counter()
        try:
            async with sess.get(url, timeout=aiohttp.ClientTimeout(
                    total=own.probe_s or cfg.health.timeout_s)) as resp:
                data = await resp.json(content_type=None) if resp.status == 200 else None
                up.last_probe_ms = (time.perf_counter() - t0) * 1000
                if resp.status != 200:
                    return False, False, f"probe HTTP {resp.status}"
            if up.cfg.engine == "ollama":
                await self._loaded(up, sess, own.probe_s or cfg.health.timeout_s)
            return True, _lists_model(data, up.cfg.model), None
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return False, False, f"probe: {type(exc).__name__}: {exc}"[:300]
        finally:
            up.last_probe_at = time.time()

    async def _loaded(self, up: Upstream, sess: aiohttp.ClientSession, timeout: float) -> None:
        """Which models the Ollama server holds now (``/api/ps``: it loads nothing and,
        like every probe, is never sent to a host that sleeps)."""
        try:
            async with sess.get(up.cfg.base_url + "/api/ps",
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                data = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            data = None
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            up.loaded = up.loaded_until = None
            return
        held = {str(m.get("name") or m.get("model")): m for m in models if isinstance(m, dict)}
        mine = held.get(up.cfg.model) or held.get(f"{up.cfg.model}:latest")
        up.loaded = mine is not None
        up.loaded_until = mine.get("expires_at") if mine else None
        g = up.group
        if g is not None:
            names = {n.removesuffix(":latest") for n in held}
            g.loaded = [m.name for m in g.members if m.cfg.model.removesuffix(":latest") in names]

    async def probe(self, up: Upstream) -> bool:
        """Probe and update the upstream's state."""
        cfg = self.get_cfg()
        ok, listed, err = await self.probe_once(up)
        if ok:
            up.fails = 0
            slow = (up.last_probe_ms or 0) > cfg.health.degraded_latency_ms
            up.state = DEGRADED if (slow or not listed) else HEALTHY
            if not listed:
                up.last_error = f"model {up.cfg.model!r} not listed by upstream"
            return True
        up.fails += 1
        up.last_error, up.last_error_at = err, time.time()
        if up.fails >= cfg.health.down_after:
            # A box that sleeps and stops answering went to sleep: only a wake brings it
            # back. One missed probe is not enough: an awake box held "asleep" is never
            # probed again, so a single slow answer would leave it reported asleep (and
            # passed over for awake boxes) until a request happened to wake it.
            up.state = ASLEEP if up.sleeps else DOWN
        elif up.state != DOWN:
            up.state = DEGRADED
        return False

    async def _loop(self, up: Upstream) -> None:
        while True:
            cfg = self.get_cfg()
            wait = max(0.0, up.cooldown_until - time.monotonic())
            if wait:
                await asyncio.sleep(wait)
            if up.state == ASLEEP or (up.name in self.wakes and not self.wakes[up.name].done()):
                # Never probe a sleeping host: only a wake (or keep-warm) brings it back.
                up.probe_now.clear()
                await up.probe_now.wait()
                continue
            await self.probe(up)
            up.probe_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cfg.health.interval_s):
                    await up.probe_now.wait()

    def start(self, upstreams: dict[str, Upstream]) -> None:
        """Start a prober for every upstream that has none."""
        self.upstreams = upstreams
        for name, up in upstreams.items():
            if name not in self.tasks:
                self.tasks[name] = asyncio.create_task(self._loop(up), name=f"probe:{name}")

    async def stop(self, name: str | None = None) -> None:
        """Stop one prober, or all of them."""
        names = [name] if name else list(self.tasks)
        for n in names:
            t = self.tasks.pop(n, None)
            if t:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        if name is None:
            for task in list(self.warming):
                task.cancel()
        for n in names:
            w = self.wakes.pop(n, None)
            if w:
                w.cancel()

    # -- waking ---------------------------------------------------------------------

    def send_magic_packet(self, up: Upstream) -> None:
        """Send ONE magic packet for the upstream's host."""
        wol = self.get_cfg().wol
        assert up.cfg.sleep.mac
        wakeonlan.wake(up.cfg.sleep.mac, host=wol.address, port=wol.port)
        self.on_wake(up.name)
        log.info("wake-on-lan: magic packet for %s (%s) to %s:%d", up.name,
                 up.cfg.sleep.mac, wol.address, wol.port)

    async def _wake(self, up: Upstream) -> bool:
        cfg = self.get_cfg()
        up.state = WAKING
        t0 = time.monotonic()
        try:
            self.send_magic_packet(up)
        except OSError as exc:
            up.state, up.last_error = ASLEEP, f"wake: cannot send magic packet: {exc}"
            self._wake_done(up, t0, up.last_error)
            return False
        if await self._first_good_probe(up, up.cfg.sleep.ready_timeout_s, cfg.health.wake_probe_interval_s):
            up.probe_now.set()
            self.rewarm(up.cfg.host or up.cfg.base_url)
            self._wake_done(up, t0, None)
            return True
        up.state = ASLEEP
        up.last_error = f"did not become ready within {up.cfg.sleep.ready_timeout_s:g}s of a wake"
        up.last_error_at = time.time()
        self._wake_done(up, t0, up.last_error)
        return False

    def _wake_done(self, up: Upstream, t0: float, error: str | None) -> None:
        """Record the wake's outcome (wakes.py: loud failures, cold-start times)."""
        if self.wake_log is None:
            return
        wol = self.get_cfg().wol
        seconds, broadcast = time.monotonic() - t0, f"{wol.address}:{wol.port}"
        if error is None:
            self.wake_log.succeeded(up, seconds, broadcast)
        else:
            self.wake_log.failed(up, seconds, broadcast, error)

    async def _first_good_probe(self, up: Upstream, within_s: float, every_s: float) -> bool:
        """Start a probe every ``every_s`` until one succeeds or ``within_s`` passes.

        Probes overlap: while the host comes up, a probe sent too early can hang
        until its timeout (its packets dropped); the next one does not wait for it,
        so readiness is seen at most ``every_s`` after it happens.
        """
        deadline = time.monotonic() + within_s
        pending: set[asyncio.Task[tuple[bool, bool, str | None]]] = set()
        try:
            while time.monotonic() < deadline:
                started = time.monotonic()
                pending.add(asyncio.create_task(self.probe_once(up)))
                while pending and time.monotonic() - started < every_s:
                    done, pending = await asyncio.wait(
                        pending, timeout=every_s - (time.monotonic() - started),
                        return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        ok, listed, err = task.result()
                        if ok:
                            up.fails, up.state = 0, HEALTHY if listed else DEGRADED
                            return True
                        up.last_error = err
                await asyncio.sleep(max(0.0, min(every_s - (time.monotonic() - started),
                                                 deadline - time.monotonic())))
            return False
        finally:
            for task in pending:
                task.cancel()

    def start_wake(self, up: Upstream) -> asyncio.Task[bool]:
        """The wake of ``up`` in progress, started (one magic packet) if there is none."""
        task = self.wakes.get(up.name)
        if task is None:
            task = asyncio.create_task(self._wake(up), name=f"wake:{up.name}")
            self.wakes[up.name] = task
            task.add_done_callback(lambda _t, n=up.name: self.wakes.pop(n, None))
        return task

    async def ensure_awake(self, up: Upstream) -> bool | None:
        """Wake ``up`` if asleep and wait until it is ready.

        Returns True when ready, False when the ready deadline passed, None when too
        many requests are already waiting (the caller treats that as busy). However
        many requests wait, one wake (one magic packet) is in progress at a time.
        """
        if up.state not in (ASLEEP, WAKING) and up.name not in self.wakes:
            return True
        task = self.start_wake(up)
        n = self.wake_waiters.get(up.name, 0)
        if n >= up.cfg.sleep.max_waiters:
            return None
        self.wake_waiters[up.name] = n + 1
        try:
            return await asyncio.shield(task)
        finally:
            self.wake_waiters[up.name] -= 1

    async def keep_warm(self, up: Upstream, minutes: float) -> dict[str, Any]:
        """Wake if needed and keep the upstream loaded for ``minutes`` (seed 000)."""
        up.keep_warm_until = time.monotonic() + minutes * 60
        woke = await self.ensure_awake(up) if up.sleeps else True
        result: dict[str, Any] = {"upstream": up.name, "minutes": minutes, "awake": bool(woke)}
        if woke and up.cfg.engine == "ollama":
            # the window's end or the model's own keep_alive, whichever is later
            status, error = await self._load(up, {"model": up.cfg.model, "keep_alive": keep_alive_for(up)})
            result.update({"preload_status": status} if error is None else {"preload_error": error})
        return result

    async def end_keep_warm(self, up: Upstream) -> dict[str, Any]:
        """End ``up``'s keep-warm window now: the model's own keep-alive (or the server's)
        applies from this moment. A model the Ollama server holds is told so at once (a load
        request with that keep-alive: on an ``OLLAMA_KEEP_ALIVE=0`` server it unloads); a
        model not loaded is not loaded for it, and a sleeping host is not woken."""
        held = up.keep_warm_until > time.monotonic()
        up.keep_warm_until = 0.0
        result: dict[str, Any] = {"upstream": up.name, "ended": held}
        if up.cfg.engine != "ollama" or up.state in (ASLEEP, WAKING) or up.name in self.wakes:
            return result
        cfg = self.get_cfg()
        sess = up.ensure_session(cfg.timeouts.connect_s)
        await self._loaded(up, sess, up.cfg.timeouts.probe_s or cfg.health.timeout_s)
        result["loaded"] = up.loaded
        if up.loaded:
            body: dict[str, Any] = {"model": up.cfg.model}
            keep_alive = keep_alive_for(up)
            if keep_alive is not None:  # None: the server's OLLAMA_KEEP_ALIVE applies
                body["keep_alive"] = keep_alive
            status, error = await self._load(up, body)
            result.update({"release_status": status} if error is None else {"release_error": error})
        return result

    async def _load(self, up: Upstream, body: dict[str, Any]) -> tuple[int | None, str | None]:
        """``POST /api/generate`` with no prompt (a load, not a generation): (status, error)."""
        cfg = self.get_cfg()
        sess = up.ensure_session(cfg.timeouts.connect_s)
        try:
            async with sess.post(up.cfg.base_url + "/api/generate", json=body,
                                 timeout=aiohttp.ClientTimeout(total=cfg.timeouts.first_byte_s)) as resp:
                await resp.read()
                return resp.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    # -- warm models ----------------------------------------------------------------

    def rewarm(self, host: str) -> None:
        """After a wake, load the host's warm models (``keep_alive`` forever) again."""
        for up in self.upstreams.values():
            if ((up.cfg.host or up.cfg.base_url) == host and up.cfg.engine == "ollama"
                    and up.cfg.keep_alive is not None
                    and keep_alive_seconds(up.cfg.keep_alive) == FOREVER):
                task = asyncio.create_task(self.preload(up), name=f"warm:{up.name}")
                self.warming.add(task)
                task.add_done_callback(self.warming.discard)

    async def preload(self, up: Upstream, within_s: float = 600.0) -> int | None:
        """Load ``up``'s model with its keep-alive (a load, no generation) once it can
        start without a swap under a running request: requests come first."""
        deadline = time.monotonic() + within_s
        await asyncio.sleep(0)  # let the requests that waited for the wake take their slots
        while not up.try_acquire():
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.5)
        try:
            cfg = self.get_cfg()
            sess = up.ensure_session(cfg.timeouts.connect_s)
            async with sess.post(up.cfg.base_url + "/api/generate",
                                 json={"model": up.cfg.model, "keep_alive": keep_alive_for(up)},
                                 timeout=aiohttp.ClientTimeout(
                                     total=cfg.timeouts.first_byte_s)) as resp:
                await resp.read()
                if resp.status == 200 and up.group is not None:
                    up.group.served(up.name)
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("warm load of %s failed: %s", up.name, exc)
            return None
        finally:
            up.release()
