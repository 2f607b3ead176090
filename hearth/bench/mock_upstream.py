"""A fast mock OpenAI-compatible upstream for benchmarks and reliability tests.

It is a measuring instrument, not a product: it answers ``/v1/chat/completions``,
``/v1/completions`` and ``/v1/embeddings`` after a fixed latency, streams a fixed
number of SSE chunks at a fixed pace, and records what it saw (requests, peak
concurrency, and the ``time.monotonic()`` at which it noticed each client close).
CLOCK_MONOTONIC is system-wide on Linux, so those stamps compare across processes.

Behaviour is set per instance (``MockSettings``) and can be overridden per request
with a ``bench`` object in the JSON body (``{"bench": {"mode": "hang"}}``), a last
message whose content is ``mode:<mode>:<id>``, or the ``X-Mock-Mode`` header.
Modes: ``ok``, ``hang``, ``fail500``, ``kill_midstream``
(abort the TCP connection after ``kill_after`` chunks), ``endless`` (stream until the
client goes away), ``flap`` (every other request fails with 500).

Run standalone: ``python -m hearth.bench.mock_upstream --port 0 --latency-ms 1``
(prints ``PORT <n>`` on stdout once listening). ``GET /_mock/stats`` returns the
counters as JSON; ``POST /_mock/reset`` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from hearth.bench.process import run_pinned, until_terminated

MODES = ("ok", "hang", "fail500", "kill_midstream", "endless", "flap")


@dataclass
class MockSettings:
    """Fixed behaviour of a mock upstream."""

    model: str = "bench-model"
    latency_ms: float = 0.0  # before the response (non-streaming) or first chunk
    chunks: int = 8  # SSE content chunks per streamed response (plus [DONE])
    chunk_interval_ms: float = 2.0  # pacing between streamed chunks
    mode: str = "ok"
    kill_after: int = 2  # chunks sent before ``kill_midstream`` aborts the connection


@dataclass
class MockStats:
    """What the mock observed (reset with :meth:`MockUpstream.reset`)."""

    requests: int = 0
    completed: int = 0
    failed: int = 0
    killed: int = 0
    probes: int = 0
    active: int = 0
    max_active: int = 0
    disconnects: int = 0
    # tag (see ``_tag``) -> monotonic time the request arrived
    seen_at: dict[str, float] = field(default_factory=dict)
    # tag (see ``_tag``) -> monotonic time the close was noticed
    closed_at: dict[str, float] = field(default_factory=dict)


def _tag(body: dict[str, Any]) -> str:
    """A request's tag: the last message's content if it starts with ``mode:`` (every
    proxy forwards messages verbatim), else the ``user`` field, else ``""``."""
    msgs = body.get("messages")
    if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict):
        c = msgs[-1].get("content")
        if isinstance(c, str) and c.startswith("mode:"):
            return c
    u = body.get("user")
    return u if isinstance(u, str) else ""


def _chunk(model: str, i: int) -> bytes:
    c = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0,
         "model": model, "choices": [{"index": 0, "delta": {"content": f"tok{i} "},
                                      "finish_reason": None}]}
    return b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n"


def _completion(model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


class MockUpstream:
    """An aiohttp server on 127.0.0.1 behaving per :class:`MockSettings`."""

    def __init__(self, settings: MockSettings | None = None, port: int = 0) -> None:
        self.settings = settings or MockSettings()
        self.stats = MockStats()
        self.port = port
        self.runner: web.AppRunner | None = None
        self._flap = 0
        self._completion = json.dumps(_completion(self.settings.model)).encode()

    @property
    def url(self) -> str:
        """Base URL (no trailing slash, no ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_get("/v1/models", self._models)
        r.add_get("/models", self._models)
        r.add_get("/health", self._models)
        r.add_get("/_mock/stats", self._stats)
        r.add_post("/_mock/reset", self._reset)
        for p in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                  "/chat/completions", "/completions", "/embeddings"):
            r.add_post(p, self._gen)
        return app

    async def start(self) -> MockUpstream:
        """Listen on 127.0.0.1 (``port`` 0: an ephemeral port)."""
        self.runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, backlog=4096)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def reset(self) -> None:
        """Clear the counters."""
        self.stats = MockStats()

    # -- handlers -------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        self.stats.probes += 1
        return web.json_response({"object": "list", "data": [
            {"id": self.settings.model, "object": "model", "owned_by": "mock"}]})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.stats))

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    def _mode(self, request: web.Request, body: dict[str, Any]) -> str:
        b = body.get("bench")
        mode = b.get("mode") if isinstance(b, dict) else None
        tag = _tag(body)
        if not mode and tag.startswith("mode:"):
            mode = tag.split(":")[1]  # "mode:<mode>:<id>" as the last message's content
        mode = mode or request.headers.get("X-Mock-Mode") or self.settings.mode
        if mode == "flap":
            self._flap += 1
            mode = "fail500" if self._flap % 2 == 0 else "ok"
        return str(mode)

    async def _gen(self, request: web.Request) -> web.StreamResponse:
        st = self.stats
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return web.json_response({"error": {"message": "bad json"}}, status=400)
        if not isinstance(body, dict):
            body = {}
        tag = _tag(body)
        if tag:
            st.seen_at[tag] = time.monotonic()
        st.requests += 1
        st.active += 1
        st.max_active = max(st.max_active, st.active)
        mode = self._mode(request, body)
        try:
            return await self._answer(request, body, mode)
        except (asyncio.CancelledError, ConnectionError):
            st.disconnects += 1
            if tag:
                st.closed_at[tag] = time.monotonic()
            raise
        finally:
            st.active -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any],
                      mode: str) -> web.StreamResponse:
        s, st = self.settings, self.stats
        if mode == "fail500":
            st.failed += 1
            return web.json_response({"error": {"message": "mock failure"}}, status=500)
        if mode == "hang":
            await asyncio.Event().wait()
        if s.latency_ms > 0:
            await asyncio.sleep(s.latency_ms / 1000)
        if request.path.endswith("/embeddings"):
            st.completed += 1
            return web.json_response({"object": "list", "model": s.model, "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        if body.get("stream") is not True:
            st.completed += 1
            return web.Response(body=self._completion, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        gap = s.chunk_interval_ms / 1000
        i = 0
        while mode == "endless" or i < s.chunks:
            if i and gap > 0:
                await asyncio.sleep(gap)
            await resp.write(_chunk(s.model, i))
            i += 1
            if mode == "kill_midstream" and i >= s.kill_after:
                st.killed += 1
                assert request.transport is not None
                request.transport.abort()
                return resp
            if mode == "endless" and request.transport is None:
                raise ConnectionResetError("client went away")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        st.completed += 1
        return resp


async def _main(args: argparse.Namespace) -> None:
    settings = MockSettings(latency_ms=args.latency_ms, chunks=args.chunks,
                            chunk_interval_ms=args.chunk_interval_ms, mode=args.mode,
                            model=args.model)
    mock = await MockUpstream(settings, args.port).start()
    print(f"PORT {mock.port}", flush=True)
    await until_terminated()
    await mock.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a mock upstream until SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m hearth.bench.mock_upstream")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--chunk-interval-ms", type=float, default=2.0)
    p.add_argument("--mode", choices=MODES, default="ok")
    p.add_argument("--model", default="bench-model")
    p.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = p.parse_args(argv)
    return run_pinned(lambda: _main(args), args.cpu, fast_loop=True)


if __name__ == "__main__":
    sys.exit(main())
