"""Test stand-ins: fake OpenAI-compatible / Ollama upstreams on 127.0.0.1 ephemeral ports.

They are test doubles, not products: each records what it received and can be told
to fail before the first byte, fail mid-stream, hang, hold requests (saturation), or
stream slowly forever (to observe a client disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from hearth.gateway.config import GatewayConfig, parse_config
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.gateway.server import start
from hearth.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventory" / "example.yml"
KEYS = {  # test client keys, keyed by the inventory's secret refs
    "env:HEARTH_KEY_CURSOR": "sk-test-cursor",
    "env:HEARTH_KEY_OPENCODE": "sk-test-opencode",
    "env:HEARTH_KEY_HOME_ASSISTANT": "sk-test-ha",
    "env:HEARTH_KEY_HERMES": "sk-test-hermes",
}


def example_config() -> GatewayConfig:
    """The gateway policy rendered from inventory/example.yml, with test keys."""
    return gateway_config_from_inventory(load_inventory(EXAMPLE), resolve=KEYS.__getitem__)


class StandinUpstream:
    """A stand-in serving one model; ``mode`` picks the behaviour."""

    def __init__(self, model: str, mode: str = "ok") -> None:
        self.model = model
        self.mode = mode
        self.awake = True
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.probes = 0
        self.active = 0
        self.max_active = 0
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> StandinUpstream:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/api/tags", self._models)
        for p in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/api/chat",
                  "/api/generate"):
            app.router.add_post(p, self._gen)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self.release.set()
        if self.runner:
            await self.runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        self.probes += 1
        if not self.awake or self.mode == "down":
            return web.Response(status=503)
        if request.path == "/api/tags":
            return web.json_response({"models": [{"name": self.model}]})
        return web.json_response({"object": "list", "data": [{"id": self.model}]})

    async def _gen(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.paths.append(request.path)
        if not self.awake:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=503)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.entered.set()
        try:
            return await self._answer(request, body)
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        mode = self.mode
        if mode == "fail500":
            return web.json_response({"error": "CUDA error: unspecified launch failure"},
                                     status=500)
        if mode == "bad400":
            return web.json_response({"error": {"message": "bad"}}, status=400)
        if mode == "hang":
            await asyncio.Event().wait()
        if mode == "gate":
            await self.release.wait()
        stream = body.get("stream", request.path.startswith("/api/"))
        if request.path == "/v1/embeddings":
            return web.json_response({"object": "list", "model": self.model, "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        native = request.path in ("/api/chat", "/api/generate")  # Ollama's shapes there
        if not stream:
            if native:
                return web.json_response(_native(self.model, request.path,
                                                 f"answer from {self.model}", done=True))
            return web.json_response(_completion(self.model, body))
        ctype = "application/x-ndjson" if native else "text/event-stream"
        resp = web.StreamResponse(headers={"Content-Type": ctype})
        await resp.prepare(request)
        chunk = functools.partial(_native_line, path=request.path) if native else _chunk
        if mode == "slow_stream":
            try:
                while True:
                    await resp.write(chunk(self.model, "tick"))
                    await asyncio.sleep(0.02)
            except (ConnectionError, asyncio.CancelledError):
                self.disconnected.set()
                raise
        await resp.write(chunk(self.model, "Hello"))
        if mode == "midstream":
            await asyncio.sleep(0.01)
            assert request.transport is not None
            request.transport.abort()
            return resp
        await resp.write(chunk(self.model, " world"))
        if native:
            await resp.write(json.dumps(_native(self.model, request.path, "", True)).encode()
                             + b"\n")
        else:
            await resp.write(b"data: [DONE]\n\n")
        return resp


def _completion(model: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0,
            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant",
                                                     "content": f"answer from {model}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}


def _native(model: str, path: str, text: str, done: bool) -> dict[str, Any]:
    """An answer (or one NDJSON line) as Ollama's /api/chat or /api/generate sends it."""
    out: dict[str, Any] = {"model": model, "created_at": "2026-01-01T00:00:00Z", "done": done}
    if path == "/api/chat":
        out["message"] = {"role": "assistant", "content": text}
    else:
        out["response"] = text
    if done:
        out.update(done_reason="stop", prompt_eval_count=3, eval_count=4)
    return out


def _native_line(model: str, text: str, path: str) -> bytes:
    return json.dumps(_native(model, path, text, False)).encode() + b"\n"


def _chunk(model: str, text: str) -> bytes:
    c = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
         "model": model, "choices": [{"index": 0, "delta": {"content": text},
                                      "finish_reason": None}]}
    return b"data: " + json.dumps(c).encode() + b"\n\n"


def free_udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def with_upstreams(cfg: GatewayConfig, stands: dict[str, StandinUpstream],
                   **overrides: Any) -> GatewayConfig:
    """Point every upstream at its stand-in (unlisted ones at a closed port)."""
    data = cfg.model_dump(mode="json")
    for name, u in data["upstreams"].items():
        u["base_url"] = stands[name].url if name in stands else "http://127.0.0.1:9"
    data["listen"] = ["127.0.0.1:0"]
    # Never let a test send a magic packet off this machine: loopback discard port.
    data["wol"] = {"address": "127.0.0.1", "port": 9}
    for u in data["upstreams"].values():
        u["sleep"]["ready_timeout_s"] = 1.0
    data["health"] = {"interval_s": 0.05, "timeout_s": 1, "cooldown_s": 0.2,
                      "wake_probe_interval_s": 0.02, "down_after": 1}
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k].update(v)
        else:
            data[k] = v
    return parse_config(data)


@contextlib.asynccontextmanager
async def running(cfg: GatewayConfig, path: str | None = None
                  ) -> AsyncIterator[tuple[str, Any]]:
    """Start the real gateway on 127.0.0.1:<ephemeral>; yield (base url, state)."""
    runner, state, bound = await start(cfg, path)
    try:
        yield f"http://127.0.0.1:{bound[0][1]}", state
    finally:
        await runner.cleanup()


async def wait_until(pred: Any, what: str = "condition", tries: int = 500) -> None:
    """Poll a predicate (no timing assertion: only a bound on how long to wait)."""
    for _ in range(tries):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")
