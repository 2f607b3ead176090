"""Shared helpers for the gateway reliability suite (no tests here).

A real gateway (``hearth.gateway.server.start``) in front of real mock upstreams
(``hearth.bench.mock_upstream``) on 127.0.0.1 ephemeral ports. Every wait here is a
bounded poll, never a timing assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from hearth.bench.mock_upstream import MockSettings, MockUpstream
from hearth.gateway.config import load_config
from hearth.gateway.server import start

TOKEN = "admin-test-token"


def policy(mock_url: str, token_file: Path, slots: int = 8, on_busy: str = "busy",
           queue_max: int = 8, extra_route: bool = False,
           health: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-upstream policy pointing at ``mock_url`` with short timeouts.

    ``health`` overrides the (quick, one-miss-is-down) health settings, for tests whose
    point is not the health probe and that must not see the upstream marked down
    because a busy machine answered one probe late.
    """
    routes: dict[str, Any] = {"chat": {"upstreams": ["mock"], "on_busy": on_busy,
                                       "queue": {"max": queue_max, "timeout_s": 20}}}
    if extra_route:
        routes["extra"] = {"upstreams": ["mock"]}
    return {
        "listen": ["127.0.0.1:0"],
        "admin_token_file": str(token_file),
        "max_body_bytes": 64 * 1024,
        "timeouts": {"connect_s": 2, "first_byte_s": 1.0, "idle_s": 2, "total_s": 1.5},
        "health": health or {"interval_s": 0.05, "timeout_s": 1, "cooldown_s": 0.05,
                             "down_after": 1},
        "upstreams": {"mock": {"engine": "vllm", "base_url": mock_url, "model": "bench-model",
                               "slots": slots}},
        "routes": routes,
        "routing": {"default_route": "chat"},
    }


@dataclass
class Rig:
    """A running gateway + its mock upstream."""

    base: str
    mock: MockUpstream
    state: Any
    policy_path: Path

    async def upstreams(self) -> list[dict[str, Any]]:
        """``GET /admin/upstreams`` (with the token)."""
        async with aiohttp.ClientSession() as s, s.get(
                self.base + "/admin/upstreams",
                headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["upstreams"]

    async def assert_no_leak(self, tries: int = 500) -> None:
        """Poll until every upstream's in-flight and queue are 0 (bounded), via the admin API."""
        ups: list[dict[str, Any]] = []
        for _ in range(tries):
            ups = await self.upstreams()
            if all(u["in_flight"] == 0 and u["queued"] == 0 for u in ups):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"leaked in-flight/queued counters: {ups}")

    async def wait_usable(self, tries: int = 500) -> None:
        """Poll until the mock upstream is healthy again (bounded)."""
        for _ in range(tries):
            ups = await self.upstreams()
            if all(u["state"] in ("healthy", "degraded") for u in ups):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("upstream never became usable again")

    async def wait_mock_idle(self, tries: int = 500) -> None:
        """Poll until the mock has no request in progress (bounded)."""
        for _ in range(tries):
            if self.mock.stats.active == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"mock still has {self.mock.stats.active} active requests")


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, settings: MockSettings | None = None,
              **policy_kw: Any) -> AsyncIterator[Rig]:
    """Start a mock upstream and a gateway in front of it; stop both at the end."""
    mock = await MockUpstream(settings or MockSettings(chunk_interval_ms=1)).start()
    token = tmp_path / "admin.token"
    token.write_text(TOKEN)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy(mock.url, token, **policy_kw)))
    runner, state, bound = await start(load_config(path), str(path))
    r = Rig(f"http://127.0.0.1:{bound[0][1]}", mock, state, path)
    try:
        await r.wait_usable()
        yield r
    finally:
        await runner.cleanup()
        await mock.stop()


def chat(stream: bool = False, mode: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chat request body; ``mode`` selects a mock behaviour for this request."""
    b: dict[str, Any] = {"model": "bench-model", "stream": stream,
                         "messages": [{"role": "user", "content": "hi"}], **extra}
    if mode:
        b["bench"] = {"mode": mode}
    return b


@dataclass
class Outcome:
    """What one client request got."""

    status: int
    body: bytes
    chunks: int = 0
    done: bool = False
    error_event: bool = False


async def call(session: aiohttp.ClientSession, base: str, body: Any,
               path: str = "/v1/chat/completions") -> Outcome:
    """POST ``body`` (JSON) and read everything; count SSE chunks for streams."""
    try:
        async with session.post(base + path, json=body) as r:
            raw = await r.read()
            out = Outcome(r.status, raw)
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome(-1, str(exc).encode())
    for line in raw.split(b"\n"):
        if line == b"data: [DONE]":
            out.done = True
        elif line.startswith(b"data: {\"error\""):
            out.error_event = True
        elif line.startswith(b"data:"):
            out.chunks += 1
    return out


def tally(name: str, outcomes: list[Outcome]) -> Counter[int]:
    """Count statuses and print a one-line summary for the scenario."""
    c = Counter(o.status for o in outcomes)
    print(f"[reliability] {name}: sent={len(outcomes)} "
          + " ".join(f"{k}={v}" for k, v in sorted(c.items())))
    return c


class ThreadedRig:
    """A :func:`rig` running on its own event loop in a thread, for sync tests (hypothesis)."""

    def __init__(self, tmp_path: Path, **kw: Any) -> None:
        import threading

        self._kw, self._tmp = kw, tmp_path
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.rig: Rig | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete,
                                        args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with rig(self._tmp, **self._kw) as r:
            self.rig = r
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Rig:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("gateway did not start")
        assert self.rig is not None
        return self.rig

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the rig's loop and wait for it (bounded)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self.loop.close()
