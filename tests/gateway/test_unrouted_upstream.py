"""An upstream on no route (issue 11 item 5: an OpenAI-compatible server hearth does not
install, reached by its served name only), through the real gateway.

inventory/lab2.yml's ``engine: openai`` serve on den-pi has no ``routes:``; a chat pinned
to its name made the gateway answer 500 "Internal gateway error" (the concrete-model pin
resolved to route ``''`` and the proxy looked that route up). It must be served like any
pinned upstream, and every refusal must be an OpenAI-style error, never a 500.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, running, wait_until

KEY, CAMERA = "sk-unrouted-test", "sk-unrouted-camera"


def _policy(pi: StandinUpstream, chat: StandinUpstream) -> dict[str, Any]:
    return {"listen": ["127.0.0.1:0"],
            "upstreams": {"pi": {"engine": "openai", "base_url": pi.url, "model": pi.model},
                          "box": {"engine": "vllm", "base_url": chat.url, "model": chat.model}},
            "routes": {"chat": {"upstreams": ["box"], "failover": []}},
            "routing": {"default_route": "chat"},
            "clients": {"laptop": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest()},
                        "camera": {"key_sha256": hashlib.sha256(CAMERA.encode()).hexdigest(),
                                   "routes": ["chat"]}},
            "health": {"interval_s": 0.05, "timeout_s": 1, "cooldown_s": 0.2, "down_after": 1}}


@asynccontextmanager
async def _gateway() -> AsyncIterator[tuple[aiohttp.ClientSession, str, Any, StandinUpstream, StandinUpstream]]:
    """The real gateway over the unrouted server ``pi`` (healthy) and the routed ``box``; a session."""
    pi = await StandinUpstream("llamacpp-phi3.5").start()
    box = await StandinUpstream("chatter-9b").start()
    try:
        async with running(parse_config(_policy(pi, box))) as (base, st), aiohttp.ClientSession() as s:
            await wait_until(lambda: st.upstreams["pi"].usable(), "pi healthy")
            yield s, base, st, pi, box
    finally:
        await pi.stop()
        await box.stop()


async def _chat(s: aiohttp.ClientSession, base: str, model: str, key: str = KEY,
                stream: bool = False, path: str = "/v1/chat/completions"
                ) -> tuple[int, dict[str, str], Any]:
    async with s.post(base + path, headers={"Authorization": f"Bearer {key}"}, json={
            "model": model, "stream": stream,
            "messages": [{"role": "user", "content": "hello"}]}) as r:
        body = await r.text() if stream else await r.json(content_type=None)
        return r.status, dict(r.headers), body


@pytest.mark.parametrize("stream", [False, True])
async def test_a_chat_pinned_to_an_unrouted_upstream_is_answered_there(stream: bool) -> None:
    async with _gateway() as (s, base, _st, pi, box):
        async with s.get(base + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}) as r:
            assert "llamacpp-phi3.5" in [m["id"] for m in (await r.json())["data"]]
        status, headers, body = await _chat(s, base, "llamacpp-phi3.5", stream=stream)
        assert status == 200, body
        assert headers["X-Hearth-Upstream"] == "pi"
        assert "X-Hearth-Route" not in headers  # it is on no route
        if stream:
            assert "Hello" in body and body.rstrip().endswith("data: [DONE]")
        else:
            assert body["choices"][0]["message"]["content"] == "answer from llamacpp-phi3.5"
        assert pi.requests[-1]["model"] == "llamacpp-phi3.5" and not box.requests
        # the rest of the gateway is untouched: auto routing still lands on the route
        assert (await _chat(s, base, "hearth/auto"))[1]["X-Hearth-Upstream"] == "box"


async def test_refusals_for_an_unrouted_upstream_are_openai_errors_not_500() -> None:
    async with _gateway() as (s, base, st, pi, box):
        # a client limited to routes does not reach a model on no route
        status, _h, body = await _chat(s, base, "llamacpp-phi3.5", key=CAMERA)
        assert status == 403, body
        assert body["error"]["code"] == "route_not_allowed"
        assert "llamacpp-phi3.5" in body["error"]["message"]
        # the Ollama API: not an Ollama upstream
        status, _h, body = await _chat(s, base, "llamacpp-phi3.5", path="/api/chat")
        assert status == 404, body
        # down: no route, so nothing to fail over to; a 503 naming it
        pi.mode = "down"
        await wait_until(lambda: not st.upstreams["pi"].usable(), "pi down")
        status, headers, body = await _chat(s, base, "llamacpp-phi3.5")
        assert status == 503, body
        assert body["error"]["message"] == "the pinned model (on no route): upstream pi down"
        assert body["error"]["code"] == "no_upstream"
        assert headers.get("Retry-After")
        assert not box.requests  # never sent elsewhere
        # failing while healthy: a 502, not a 500
        pi.mode = "fail500"
        await wait_until(lambda: st.upstreams["pi"].usable(), "pi back")
        status, _h, body = await _chat(s, base, "llamacpp-phi3.5")
        assert status == 502, body
        assert body["error"]["code"] == "upstream_error"
        assert not box.requests
