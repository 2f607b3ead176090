"""A bare forwarder: the cost of one Python HTTP hop, and nothing else.

An aiohttp server that relays every POST to ``--upstream`` + the same path and
streams the answer back chunk by chunk. No parsing, routing, limits or logging: it
is the floor any Python gateway is compared against. ``--client`` picks the
upstream client library: ``aiohttp`` (the gateway's) or ``httpx`` (encode/httpx#3215:
its connection pool is known to contend under concurrency).

``python -m hearth.bench.relay --upstream http://127.0.0.1:P --port 0 [--client httpx]``
prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from hearth.bench.process import run_pinned, until_terminated

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def aiohttp_handler(upstream: str) -> tuple[Handler, Callable[[], Awaitable[None]]]:
    """A relay handler using one keep-alive aiohttp session."""
    session: list[aiohttp.ClientSession] = []

    def sess() -> aiohttp.ClientSession:
        if not session:
            session.append(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None)))
        return session[0]

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with sess().post(upstream + request.path, data=body,
                               headers={"Content-Type": "application/json"}) as up:
            out = web.StreamResponse(status=up.status, headers={
                "Content-Type": up.headers.get("Content-Type", "application/json")})
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    async def close() -> None:
        if session:
            await session[0].close()

    return handle, close


def httpx_handler(upstream: str) -> tuple[Handler, Callable[[], Awaitable[None]]]:
    """A relay handler using one httpx.AsyncClient (its own pool)."""
    import httpx

    client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=None,
                                                                 max_keepalive_connections=1000))

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        req = client.build_request("POST", upstream + request.path, content=body,
                                   headers={"Content-Type": "application/json"})
        up = await client.send(req, stream=True)
        try:
            out = web.StreamResponse(status=up.status_code, headers={
                "Content-Type": up.headers.get("Content-Type", "application/json")})
            await out.prepare(request)
            async for chunk in up.aiter_raw():
                await out.write(chunk)
            await out.write_eof()
            return out
        finally:
            await up.aclose()

    return handle, client.aclose


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve(upstream: str, port: int, client: str = "aiohttp"
                ) -> tuple[web.AppRunner, int, Callable[[], Awaitable[None]]]:
    """Start the relay on 127.0.0.1; returns (runner, port, close-client)."""
    make = httpx_handler if client == "httpx" else aiohttp_handler
    handle, close = make(upstream.rstrip("/"))
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, bound, close


async def _main(args: argparse.Namespace) -> None:
    runner, port, close = await serve(args.upstream, args.port, args.client)
    print(f"PORT {port}", flush=True)
    await until_terminated()
    await runner.cleanup()
    await close()


def main(argv: list[str] | None = None) -> int:
    """Run the relay until SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m hearth.bench.relay")
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    p.add_argument("--cpu", type=int, default=None)
    args = p.parse_args(argv)
    return run_pinned(lambda: _main(args), args.cpu)


if __name__ == "__main__":
    sys.exit(main())
