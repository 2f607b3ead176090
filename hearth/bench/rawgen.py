"""An open-loop load generator on raw asyncio protocols (the throughput steps).

The aiohttp client costs the generator ~0.2-0.3 ms of CPU per request, which made the
generator itself the limit near 1400-2000 requests/s on a core it shares with the mock
(``loadgen_limited``). This one sends a pre-built HTTP/1.1 request on a pool of
keep-alive connections and parses just enough of the answer (status, Content-Length
or chunked framing) to know when it is complete. Same semantics as
:func:`hearth.bench.loadgen.open_loop`: requests fire at a constant rate whatever the
completions do, each latency is measured from its *intended* send time (no
coordinated omission), and a request not answered 200 within ``timeout_s`` is an
error. Sends are paced in ticks of at least :data:`TICK_S` (uvloop rounds timers to
whole milliseconds, so shorter sleeps spin the loop); a send late by its tick counts
that lateness in its latency. The cyclic garbage collector is off during a step (a
step's objects die by reference counting): a collection pause would land in the
measured tail. :mod:`hearth.bench.rawgen_procs` spreads a step over worker processes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from .loadgen import OpenLoopResult

TICK_S = 0.001  # shortest pacing sleep
# connections one step may hold open (a few tens carry a healthy step): past it, a send
# waits for a connection to free up, its wait counted in its latency, rather than
# opening sockets until the process runs out of file descriptors
MAX_CONNS = 2000


class _Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, run: _Run, intended: float) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.intended: float | None = intended  # of the request in flight, if any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.run.req)  # type: ignore[union-attr]

    def send(self, intended: float) -> None:
        """Write the run's request, intended at ``intended``."""
        assert self.transport is not None
        self.intended = intended
        self.transport.write(self.run.req)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        status = _complete(self.buf)
        if status is None:
            return
        self.buf.clear()
        intended, self.intended = self.intended, None
        closes = status < 0  # the server will close: do not reuse
        if closes:
            self.close()
        if intended is not None:
            self.run.done(abs(status), intended)
        if not closes:
            self.run.free(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        with contextlib.suppress(ValueError):
            self.run.idle.remove(self)
        intended, self.intended = self.intended, None
        self.run.open -= 1
        if intended is not None:
            self.run.done(0, intended)
        self.run.next_waiting()

    def usable(self) -> bool:
        """Open and not closing."""
        return self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()


def _complete(buf: bytearray) -> int | None:
    """The status of a complete answer in ``buf`` (negative: connection closes); None
    while it is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    body = end + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        n = int(head[i + 17:j if j > 0 else len(head)])
        if len(buf) < body + n:
            return None
    elif b"\r\ntransfer-encoding: chunked" in head:
        pos = body
        while True:  # walk the chunks: size line, data, CRLF; a 0-size chunk ends it
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(bytes(buf[pos:nl]).split(b";")[0], 16)
            if size == 0:  # then the empty trailer line
                if len(buf) < nl + 4:
                    return None
                break
            pos = nl + 2 + size + 2
            if len(buf) < pos:
                return None
    closes = b"\r\nconnection: close" in head
    return -status if closes else status



def request_bytes(url: str, body: bytes, content_type: str = "application/json") -> bytes:
    """The bytes of one HTTP/1.1 POST of ``body`` to ``url`` (keep-alive)."""
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    return (f"POST {u.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


class _Run:
    """One open-loop step: its connections, its in-flight count and its result.

    Every request is settled exactly once: answered, lost with its connection, or
    (once the step has waited ``timeout_s`` past its last send) never answered.
    """

    def __init__(self, url: str, body: bytes, rate: float, timeout_s: float) -> None:
        u = urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.req = request_bytes(url, body)
        self.res = OpenLoopResult(rate)
        self.timeout_ms = timeout_s * 1000
        self.idle: list[_Conn] = []
        self.conns: list[_Conn] = []
        self.pending = 0
        self.open = 0  # connections opening or open
        self.waiting: collections.deque[float] = collections.deque()  # past MAX_CONNS
        self.sent_all = False
        self.closed = False  # settled: late answers no longer count
        self.finished = asyncio.Event()

    def fire(self, intended: float) -> None:
        """Send one request now: on an idle connection, a new one, or (at
        :data:`MAX_CONNS`) the next to come free."""
        self.pending += 1
        while self.idle:
            c = self.idle.pop()
            if c.usable():
                c.send(intended)
                return
        if self.open >= MAX_CONNS:
            self.waiting.append(intended)
            return
        self._connect(intended)

    def _connect(self, intended: float) -> None:
        self.open += 1
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_connection(lambda: self._new(intended),
                                                       self.host, self.port))
        task.add_done_callback(lambda t: self._failed(intended) if t.exception() else None)

    def _failed(self, intended: float) -> None:
        """A connection that never opened: its request is an error."""
        self.open -= 1
        self.done(0, intended)
        self.next_waiting()

    def _new(self, intended: float) -> _Conn:
        c = _Conn(self, intended)
        self.conns.append(c)
        return c

    def free(self, c: _Conn) -> None:
        """``c`` answered and stays open: the next waiting send, or the idle list."""
        if self.waiting and not self.closed:
            c.send(self.waiting.popleft())
        else:
            self.idle.append(c)

    def next_waiting(self) -> None:
        """A connection went away: open one for the next waiting send, if any."""
        if self.waiting and not self.closed:
            self._connect(self.waiting.popleft())

    def done(self, status: int, intended: float) -> None:
        """Settle one request: ``status`` 200 in time is a latency, anything else an error."""
        if self.closed:
            return
        self.pending -= 1
        ms = (time.perf_counter() - intended) * 1000
        if status == 200 and ms <= self.timeout_ms:
            self.res.ok += 1
            self.res.latencies_ms.append(ms)
        else:
            self.res.errors += 1
        if self.pending == 0 and self.sent_all:
            self.finished.set()

    async def settle(self, timeout_s: float) -> None:
        """Wait for what is in flight (bounded), count the rest as errors, close."""
        self.sent_all = True
        if self.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finished.wait(), timeout_s + 1)
        self.res.errors += self.pending  # never answered in time
        self.closed = True
        for c in self.conns:
            c.close()


def send_times(t0: float, interval: float, n: int) -> Iterator[list[float]]:
    """The intended send times ``t0 + i * interval`` (i < n), grouped by tick: each
    group is due now; the caller sleeps until the next group's first time."""
    i = 0
    while i < n:
        now = time.perf_counter()
        due = []
        while i < n and t0 + i * interval <= now:  # catch up: never skip a send
            due.append(t0 + i * interval)
            i += 1
        yield due


async def raw_open_loop(url: str, body: bytes, rate: float, duration_s: float,
                        timeout_s: float = 5.0, start_at: float | None = None,
                        count: int | None = None) -> OpenLoopResult:
    """Fire ``rate`` POSTs/s of ``body`` to ``url`` for ``duration_s`` (open loop).

    ``start_at`` (a :func:`time.monotonic` time, shared by processes on one machine)
    is when the first send is due (default: now); ``count`` overrides
    ``rate * duration_s`` as the number of requests.
    """
    run = _Run(url, body, rate, timeout_s)
    n = count if count is not None else max(1, int(rate * duration_s))
    interval = 1.0 / rate
    t0 = time.perf_counter() + (0.0 if start_at is None else start_at - time.monotonic())
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        i = 0
        for due in send_times(t0, interval, n):
            for intended in due:
                run.fire(intended)
            i += len(due)
            if i < n:
                await asyncio.sleep(max(TICK_S, t0 + i * interval - time.perf_counter()))
        run.res.sent = n
        await run.settle(timeout_s)
    finally:
        if gc_was_on:
            gc.enable()
    run.res.wall_s = time.perf_counter() - t0
    return run.res
