"""Load generation: one-at-a-time latency, open-loop throughput, streamed chunk timing.

Open loop means requests are fired at a constant arrival rate whatever the
completions do, and each latency is measured from the request's *intended* send
time, so a stalled server cannot hide its tail by slowing the generator down
(coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

JSON = {"Content-Type": "application/json"}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def new_session(limit: int = 0) -> aiohttp.ClientSession:
    """A keep-alive client session with no pool cap (0) and no auto-decompression."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))


async def one_request(session: aiohttp.ClientSession, url: str, body: bytes) -> float:
    """POST once and read the whole answer; latency in ms (raises on non-200)."""
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=JSON) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}")
    return (time.perf_counter() - t0) * 1000


@dataclass
class OpenLoopResult:
    """One open-loop step at a fixed rate."""

    rate: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def p50(self) -> float:
        """Median latency from the intended send time."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        """99th percentile latency from the intended send time."""
        return percentile(self.latencies_ms, 99)


async def open_loop(session: aiohttp.ClientSession, url: str, body: bytes, rate: float,
                    duration_s: float, timeout_s: float = 5.0) -> OpenLoopResult:
    """Fire ``rate`` requests/s for ``duration_s``; latency from each intended time."""
    res = OpenLoopResult(rate)
    n = max(1, int(rate * duration_s))
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    tmo = aiohttp.ClientTimeout(total=timeout_s)

    async def fire(intended: float) -> None:
        try:
            async with session.post(url, data=body, headers=JSON, timeout=tmo) as r:
                await r.read()
                ok = r.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            ok = False
        if ok:
            res.ok += 1
            res.latencies_ms.append((time.perf_counter() - intended) * 1000)
        else:
            res.errors += 1

    t0 = time.perf_counter()
    i = 0
    while i < n:
        now = time.perf_counter()
        while i < n and t0 + i * interval <= now:  # catch up: never skip a send
            t = asyncio.create_task(fire(t0 + i * interval))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, t0 + i * interval - time.perf_counter()))
    res.sent = n
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s + 1)
    res.wall_s = time.perf_counter() - t0
    return res


@dataclass
class StreamSample:
    """One streamed response: time to first chunk, gaps between chunks, counts."""

    ttft_ms: float
    gaps_ms: list[float]
    chunks: int
    done: bool
    status: int


async def stream_once(session: aiohttp.ClientSession, url: str, body: bytes,
                      timeout_s: float = 30.0) -> StreamSample:
    """POST a streaming request; time each SSE ``data:`` event as it arrives."""
    t0 = time.perf_counter()
    ttft = math.nan
    stamps: list[float] = []
    done = False
    async with session.post(url, data=body, headers=JSON,
                            timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
        async for line in r.content:
            if not line.startswith(b"data:"):
                continue
            now = time.perf_counter()
            if line.strip() == b"data: [DONE]":
                done = True
                continue
            if not stamps:
                ttft = (now - t0) * 1000
            stamps.append(now)
        status = r.status
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
    return StreamSample(ttft, gaps, len(stamps), done, status)


def chat_body(stream: bool = False, model: str = "bench-model", **extra: Any) -> bytes:
    """A small chat-completions request body."""
    import json

    b: dict[str, Any] = {"model": model, "stream": stream,
                         "messages": [{"role": "user", "content": "say ok"}], **extra}
    return json.dumps(b, separators=(",", ":")).encode()
