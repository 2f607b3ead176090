"""A relayed stream's idle and total limits (``timeouts.idle_s``, ``timeouts.total_s``).

An upstream that stalls mid-stream is cut after ``idle_s`` (a terminal SSE error, no
``[DONE]``), one that keeps sending slower than that but never pauses ``idle_s`` is not,
and one that never ends is cut at ``total_s``. Bounds only, no timing assertion beyond
"well before the other limit".
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from aiohttp import web

from hearth.gateway.config import parse_config
from hearth.gateway.server import start


def _chunk(i: int) -> bytes:
    return b"data: " + json.dumps({"choices": [{"delta": {"content": f"t{i}"}}]}).encode() + b"\n\n"


async def _upstream(mode: str) -> tuple[web.AppRunner, str]:
    async def gen(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_chunk(0))
        if mode == "stall":
            await asyncio.sleep(30)
        for i in range(1, 1000 if mode == "endless" else 8):
            await asyncio.sleep(0.1)  # slower than nothing, faster than idle_s
            await resp.write(_chunk(i))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", gen)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def _stream(mode: str, idle_s: float, total_s: float) -> tuple[str, float]:
    up, url = await _upstream(mode)
    cfg: dict[str, Any] = {
        "listen": ["127.0.0.1:0"],
        "timeouts": {"connect_s": 2, "first_byte_s": 5, "idle_s": idle_s, "total_s": total_s},
        "health": {"interval_s": 0.05, "timeout_s": 1},
        "upstreams": {"u": {"engine": "vllm", "base_url": url, "model": "m", "slots": 4}},
        "routes": {"chat": {"upstreams": ["u"]}}, "routing": {"default_route": "chat"}}
    runner, _st, bound = await start(parse_config(cfg))
    try:
        t0 = time.monotonic()
        async with aiohttp.ClientSession() as s, s.post(
                f"http://127.0.0.1:{bound[0][1]}/v1/chat/completions",
                json={"model": "m", "stream": True,
                      "messages": [{"role": "user", "content": "hi"}]}) as r:
            assert r.status == 200
            text = (await r.read()).decode()
        return text, time.monotonic() - t0
    finally:
        await runner.cleanup()
        await up.cleanup()


async def test_a_stalled_stream_is_cut_after_idle_s() -> None:
    text, took = await _stream("stall", idle_s=0.4, total_s=20)
    assert "failed mid-stream: timed out" in text and "[DONE]" not in text
    assert took < 10, took  # idle_s, not the upstream's 30 s stall nor total_s


async def test_a_slow_steady_stream_is_not_cut_by_idle_s() -> None:
    # a chunk every 0.1 s against idle_s 2: a busy machine's stalls of the event loop (0.4 s
    # was once exceeded while two labs built beside the tests) stay far below it
    text, _took = await _stream("drip", idle_s=2.0, total_s=20)
    assert text.count("data: {\"choices\"") == 8 and "[DONE]" in text
    assert "error" not in text


async def test_an_endless_stream_is_cut_at_total_s() -> None:
    text, took = await _stream("endless", idle_s=5, total_s=1.0)
    assert "failed mid-stream: timed out" in text and "[DONE]" not in text
    assert took < 10, took

