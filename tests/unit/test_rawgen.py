"""The open-loop generators (``hearth.bench.rawgen``, ``rawgen_procs``) against a real
HTTP server on loopback: every request settled once, results merged exactly across
worker processes, the rate actually fired, errors counted, a dead worker named."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hearth.bench.loadgen import OpenLoopResult
from hearth.bench.rawgen import TICK_S, _complete, raw_open_loop
from hearth.bench.rawgen_procs import START_DELAY_S, GenPool, WorkerDied, merge, shares

BODY = b'{"model":"m","messages":[]}'
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


class Server:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 that counts what it is sent.

    ``answer(n)`` decides the n-th request's fate (1-based): ``"ok"``, ``"fail"``
    (500), ``"close"`` (drop the connection unanswered) or ``"hang"`` (never answer).
    """

    def __init__(self, answer: Callable[[int], str] = lambda n: "ok") -> None:
        self.answer = answer
        self.count = 0
        self.arrivals: list[float] = []  # time.monotonic() of each request
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions"

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await r.readexactly(length)
                self.count += 1
                self.arrivals.append(time.monotonic())
                fate = self.answer(self.count)
                if fate == "close":
                    break
                if fate == "hang":
                    await asyncio.sleep(3600)
                w.write(OK if fate == "ok" else FAIL)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``coro()`` on a fresh event loop."""
    return asyncio.run(coro())  # type: ignore[arg-type]


def settled(res: OpenLoopResult) -> None:
    """Every request sent was settled exactly once, a latency per success."""
    assert res.ok + res.errors == res.sent
    assert len(res.latencies_ms) == res.ok


def test_shares_split_every_request() -> None:
    assert shares(10, 3) == [4, 3, 3]
    assert shares(2, 4) == [1, 1, 0, 0]
    assert sum(shares(12345, 7)) == 12345


def test_merge_sums_and_concatenates() -> None:
    parts = [{"sent": 3, "ok": 2, "errors": 1, "latencies_ms": [1.0, 2.0], "wall_s": 1.5, "cpu_s": 0.1},
             {"sent": 2, "ok": 2, "errors": 0, "latencies_ms": [3.0, 4.0], "wall_s": 1.7, "cpu_s": 0.2}]
    res = merge(50.0, parts)
    assert (res.rate, res.sent, res.ok, res.errors, res.procs) == (50.0, 5, 4, 1, 2)
    assert sorted(res.latencies_ms) == [1.0, 2.0, 3.0, 4.0]
    assert res.wall_s == 1.7 and res.cpu_s == pytest.approx(0.3)


def test_complete_reads_length_and_chunked_framing() -> None:
    assert _complete(bytearray(OK)) == 200
    assert _complete(bytearray(OK[:-1])) is None
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    assert _complete(bytearray(chunked)) == 200
    assert _complete(bytearray(chunked[:-2])) is None
    assert _complete(bytearray(FAIL.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))) == -500


def test_in_process_step_answers_every_request() -> None:
    async def go() -> tuple[OpenLoopResult, int]:
        async with Server() as srv:
            res = await raw_open_loop(srv.url, BODY, 400, 0.5)
            return res, srv.count

    res, seen = run(go)
    settled(res)
    assert res.sent == seen == res.ok == 200 and res.errors == 0
    assert all(ms > 0 for ms in res.latencies_ms)


def test_pool_merges_workers_exactly() -> None:
    async def go() -> tuple[OpenLoopResult, int]:
        async with Server() as srv, GenPool(3) as pool:
            res = await pool.step(srv.url, BODY, 600, 1.0)
            return res, srv.count

    res, seen = run(go)
    settled(res)
    assert res.sent == seen == res.ok == 600 and res.errors == 0
    assert res.procs == 3 and res.cpu_s > 0


def test_pool_fires_the_rate_asked_for() -> None:
    """Open loop: the schedule's k-th request is never sent before its time (no burst,
    whatever the load), and on time give or take the machine: a late send counts in its
    latency. How late is the machine's, so only a bound that a generator firing at half
    the rate would break is asserted (its median request would be a second late)."""
    rate, duration = 500.0, 2.0

    async def go() -> tuple[float, list[float]]:
        async with Server() as srv, GenPool(2) as pool:
            called = time.monotonic()
            await pool.step(srv.url, BODY, rate, duration)
            return called, sorted(srv.arrivals)

    called, arrivals = run(go)
    assert len(arrivals) == rate * duration
    due = [called + START_DELAY_S + k / rate for k in range(len(arrivals))]  # earliest the schedule allows
    early = [(k, round(due[k] - t, 4)) for k, t in enumerate(arrivals) if t < due[k] - TICK_S]
    assert not early, early[:5]
    late = sorted(t - d for t, d in zip(arrivals, due, strict=True))
    assert late[len(late) // 2] < duration / 4, f"median send {late[len(late) // 2]:.3f}s behind the schedule"


def test_pool_counts_every_error_once() -> None:
    fates = {0: "ok", 1: "fail", 2: "close"}

    async def go() -> OpenLoopResult:
        async with Server(lambda n: fates[n % 3]) as srv, GenPool(2) as pool:
            return await pool.step(srv.url, BODY, 300, 1.0)

    res = run(go)
    settled(res)
    assert res.sent == 300 and res.ok == 100 and res.errors == 200


def test_unanswered_requests_are_errors_counted_once() -> None:
    async def go() -> tuple[OpenLoopResult, int]:
        async with Server(lambda n: "hang" if n % 2 else "ok") as srv:
            res = await raw_open_loop(srv.url, BODY, 100, 0.4, timeout_s=0.3)
            await asyncio.sleep(0.2)  # the closed connections' callbacks have run
            return res, srv.count

    res, seen = run(go)
    settled(res)
    assert res.sent == seen == 40 and res.errors == 20 and res.ok == 20


def test_nothing_listening_is_all_errors() -> None:
    async def go() -> OpenLoopResult:
        async with Server() as srv:
            url = srv.url
        await asyncio.sleep(0.05)
        return await raw_open_loop(url, BODY, 100, 0.2)

    res = run(go)
    settled(res)
    assert res.sent == res.errors == 20


def test_a_dead_worker_is_a_clean_error_naming_it() -> None:
    async def go() -> None:
        async with Server() as srv, GenPool(2) as pool:
            pool.workers[1].kill()
            await pool.workers[1].wait()
            await pool.step(srv.url, BODY, 100, 0.2)

    with pytest.raises(WorkerDied, match=r"worker 1 \(pid \d+\) exited with code -9"):
        run(go)


def test_a_worker_dying_mid_step_is_a_clean_error() -> None:
    async def go() -> None:
        async with Server() as srv, GenPool(2) as pool:
            step = asyncio.create_task(pool.step(srv.url, BODY, 100, 2.0))
            await asyncio.sleep(0.5)
            pool.workers[0].kill()
            await step

    t0 = time.monotonic()
    with pytest.raises(WorkerDied, match=r"worker 0 .*exited with code -9"):
        run(go)
    assert time.monotonic() - t0 < 10


def test_past_the_connection_cap_sends_wait_and_still_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import hearth.bench.rawgen as rawgen

    monkeypatch.setattr(rawgen, "MAX_CONNS", 2)

    async def go() -> tuple[OpenLoopResult, int, int]:
        conns = 0

        async def slow(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            nonlocal conns
            conns += 1
            try:
                while True:
                    head = await r.readuntil(b"\r\n\r\n")
                    await r.readexactly(int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]))
                    await asyncio.sleep(0.02)  # slower than the rate: sends queue
                    w.write(OK)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                w.close()

        srv = await asyncio.start_server(slow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/"
        res = await raw_open_loop(url, BODY, 400, 0.1)  # 40 requests, 2 connections
        srv.close()
        return res, conns, len(res.latencies_ms)

    res, conns, n = run(go)
    settled(res)
    assert conns == 2 and res.ok == n == 40 and res.errors == 0
    # 20 rounds of 20 ms on 2 connections: the last answer came >= 400 ms after the
    # first send, ~300 ms after its own intended time (97.5 ms), and its wait counted
    assert max(res.latencies_ms) >= 400 - 97.5 - 10
