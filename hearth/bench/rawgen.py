"""An open-loop load generator on raw asyncio protocols (the throughput steps).

The aiohttp client costs the generator ~0.2-0.3 ms of CPU per request, which made the
generator itself the limit near 1400-2000 requests/s on a core it shares with the mock
(``loadgen_limited``). This one sends a pre-built HTTP/1.1 request on a pool of
keep-alive connections and parses just enough of the answer (status, Content-Length
or chunked framing) to know when it is complete: a few tens of microseconds per
request. Same semantics as :func:`hearth.bench.loadgen.open_loop`: requests fire at
a constant rate whatever the completions do, each latency is measured from its
*intended* send time (no coordinated omission), and a request not answered 200
within ``timeout_s`` is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from .loadgen import OpenLoopResult

Done = Callable[[int], None]


class _Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, pool: RawPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.done: Done | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ready.set_result(None)

    def send(self, request: bytes, done: Done) -> None:
        assert self.transport is not None
        self.done = done
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        status = _complete(self.buf)
        if status is None:
            return
        self.buf.clear()
        done, self.done = self.done, None
        if status < 0:  # the server will close: do not reuse
            self._close()
            status = -status
        else:
            self.pool.idle.append(self)
        if done is not None:
            done(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        _discard(self.pool.idle, self)
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed"))
        done, self.done = self.done, None
        if done is not None:
            done(0)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _discard(lst: list[_Conn], c: _Conn) -> None:
    """Remove ``c`` from ``lst`` if it is there."""
    with contextlib.suppress(ValueError):
        lst.remove(c)


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


class RawPool:
    """Keep-alive connections to one server, reused as they become idle."""

    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.path = u.path or "/"
        self.idle: list[_Conn] = []
        self.all: list[_Conn] = []

    def request(self, body: bytes, content_type: str = "application/json") -> bytes:
        """The bytes of one POST of ``body``."""
        return (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    async def conn(self) -> _Conn:
        """An idle connection, or a new one."""
        while self.idle:
            c = self.idle.pop()
            if c.transport is not None and not c.transport.is_closing():
                return c
        loop = asyncio.get_running_loop()
        _, c = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        self.all.append(c)
        return c

    def close(self) -> None:
        """Close every connection."""
        for c in self.all:
            c._close()
        self.all.clear()
        self.idle.clear()


async def raw_open_loop(url: str, body: bytes, rate: float, duration_s: float,
                        timeout_s: float = 5.0) -> OpenLoopResult:
    """Fire ``rate`` POSTs/s of ``body`` to ``url`` for ``duration_s`` (open loop)."""
    res = OpenLoopResult(rate)
    n = max(1, int(rate * duration_s))
    interval = 1.0 / rate
    pool = RawPool(url)
    req = pool.request(body)
    pending = 0
    timeout_ms = timeout_s * 1000
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fire(intended: float) -> None:
        nonlocal pending
        pending += 1
        answered = False

        def done(status: int) -> None:
            nonlocal pending, answered
            if answered:
                return
            answered = True
            pending -= 1
            ms = (time.perf_counter() - intended) * 1000
            if status == 200 and ms <= timeout_ms:
                res.ok += 1
                res.latencies_ms.append(ms)
            else:
                res.errors += 1
            if pending == 0 and sent_all:
                finished.set()

        def start(c: _Conn) -> None:
            c.send(req, done)

        if pool.idle:
            c = pool.idle.pop()
            if c.transport is not None and not c.transport.is_closing():
                start(c)
                return
        task = loop.create_task(pool.conn())
        task.add_done_callback(lambda t: done(0) if t.exception() else start(t.result()))

    sent_all = False
    t0 = time.perf_counter()
    i = 0
    while i < n:
        now = time.perf_counter()
        while i < n and t0 + i * interval <= now:  # catch up: never skip a send
            fire(t0 + i * interval)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, t0 + i * interval - time.perf_counter()))
    res.sent = n
    sent_all = True
    if pending:
        try:
            await asyncio.wait_for(finished.wait(), timeout_s + 1)
        except TimeoutError:
            res.errors += pending  # never answered in time
    res.wall_s = time.perf_counter() - t0
    pool.close()
    return res
