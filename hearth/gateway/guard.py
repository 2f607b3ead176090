"""Connection-level limits: what a client costs before its request reaches a handler.

aiohttp's defaults suit a server behind a reverse proxy; the gateway is the front door
itself, so :class:`GuardedRunner` serves with:

- no request-body decompression (``auto_decompress=False``): a compressed body is
  refused by the handlers (415, :func:`hearth.gateway.body.check_encoding`), so a
  "gzip bomb" costs only the compressed bytes that arrive;
- a deadline for a request's head (request line + headers): ``limits.header_timeout_s``
  from the first byte of a head that is not complete (a slowloris connection is
  closed);
- an idle keep-alive limit of ``limits.keepalive_timeout_s`` (aiohttp's default is an
  hour);
- at most ``limits.connections_per_peer`` open connections per peer address (more are
  closed as they arrive);
- an unread request body (a request refused before its body was read) drained for at
  most :data:`LINGER_S`, never decoded, before the connection closes;
- no ``Server:`` header naming the stack and its versions (``Server: hearth``);
- no traceback logged for a request aiohttp cannot parse (a debug line instead).

Limits are read from the live policy, so a reload applies them to new connections.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web, web_response
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from .config import LimitsCfg

LINGER_S = 1.0

# aiohttp adds ``Server: Python/3.x aiohttp/3.y`` to every response it does not set
# one on, its own 400s for unparsable requests included; this is the only switch.
web_response.SERVER_SOFTWARE = "hearth"  # type: ignore[attr-defined]


class GuardedHandler(RequestHandler):
    """aiohttp's per-connection protocol, plus the per-peer cap and the head deadline."""

    # RequestHandler uses __slots__; ours need a __dict__-free home too
    __slots__ = ("_g_count", "_g_head", "_g_peer", "_g_timeout")

    def __init__(self, manager: GuardedServer, **kw: Any) -> None:
        super().__init__(manager, **kw)
        self._g_peer: str | None = None
        self._g_head: asyncio.TimerHandle | None = None
        self._g_count = 0
        self._g_timeout = manager.limits().header_timeout_s

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        mgr = self._manager
        assert isinstance(mgr, GuardedServer)
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else None
        if ip is None:
            return
        if mgr.per_peer[ip] >= mgr.limits().connections_per_peer:
            mgr.refused("connections_per_peer")
            self.force_close()
            return
        mgr.per_peer[ip] += 1
        self._g_peer = ip

    def connection_lost(self, exc: BaseException | None) -> None:
        mgr = self._manager
        if self._g_peer is not None and isinstance(mgr, GuardedServer):
            n = mgr.per_peer[self._g_peer] - 1
            if n > 0:
                mgr.per_peer[self._g_peer] = n
            else:
                del mgr.per_peer[self._g_peer]
            self._g_peer = None
        if self._g_head is not None:
            self._g_head.cancel()
            self._g_head = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before and self._g_head is not None:
            self._g_head.cancel()  # a whole request head arrived in time
            self._g_head = None
        # bytes that arrive while the connection waits for a request and do not
        # complete its head: the head has header_timeout_s (from here) to arrive
        waiter = self._waiter
        if (self._g_head is None and data and waiter is not None and not waiter.done()):
            self._g_count = self._request_count
            self._g_head = self._loop.call_later(self._g_timeout, self._head_deadline)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A request aiohttp cannot parse is the client's fault: one debug line, no
        traceback (a hostile client would otherwise fill the log at will)."""
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            self.logger.debug("refused an unparsable request: %s", exc)
            return
        super().log_exception(*args, **kw)

    def _head_deadline(self) -> None:
        self._g_head = None
        waiter = self._waiter
        if (self._request_count == self._g_count and waiter is not None
                and not waiter.done()):
            mgr = self._manager
            if isinstance(mgr, GuardedServer):
                mgr.refused("header_timeout")
            self.force_close()


class GuardedServer(web.Server):
    """aiohttp's connection factory, making :class:`GuardedHandler` protocols."""

    def __init__(self, *args: Any, limits: Callable[[], LimitsCfg],
                 on_refuse: Callable[[str], None] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.limits = limits
        self.per_peer: Counter[str] = Counter()
        self._on_refuse = on_refuse

    def refused(self, why: str) -> None:
        """A connection was closed by a limit."""
        if self._on_refuse is not None:
            self._on_refuse(why)

    def __call__(self) -> GuardedHandler:
        kw = dict(self._kwargs)
        kw["keepalive_timeout"] = self.limits().keepalive_timeout_s
        return GuardedHandler(self, loop=self._loop, **kw)


class GuardedRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose server is a :class:`GuardedServer`."""

    def __init__(self, app: web.Application, limits: Callable[[], LimitsCfg],
                 on_refuse: Callable[[str], None] | None = None, **kw: Any) -> None:
        kw.setdefault("auto_decompress", False)
        kw.setdefault("lingering_time", LINGER_S)
        super().__init__(app, **kw)
        self._limits, self._on_refuse = limits, on_refuse

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation,
                             loop=plain._loop, limits=self._limits,
                             on_refuse=self._on_refuse, **plain._kwargs)
