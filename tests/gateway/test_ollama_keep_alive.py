"""Per-model keep-alive, keep-warm and models taking turns, through the real gateway to
the Ollama stand-in (``tests/standins/ollama/ollama.py``, a process on loopback).

The stand-in runs with ``OLLAMA_KEEP_ALIVE=0`` (seed 000): a model is unloaded right
after any answer that does not carry a keep-alive of its own, and Ollama's
OpenAI-compatible endpoint never carries one (its ``ChatCompletionRequest`` has no
such field), so every "still loaded" below is the gateway's doing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from hearth.gateway.config import GatewayConfig, parse_config

from .ollama_standin import call as _call
from .ollama_standin import ollama_standin
from .standins import running, wait_until

WARM, COLD, CODER = "qwen3.5:9b", "llama3.2:3b", "deepseek-coder:6.7b"
ADMIN = {"Authorization": "Bearer admin-secret"}


def _standin(tmp: Path, **env: str) -> contextlib.AbstractContextManager[str]:
    return ollama_standin(tmp / "models", (WARM, COLD, CODER), **env)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _standin(tmp_path_factory.mktemp("ollama"), OLLAMA_MAX_LOADED_MODELS="3") as url:
        yield url


def _cfg(url: str, tmp: Path, *, max_loaded: int | None = None, **routes: Any) -> GatewayConfig:
    token = tmp / "admin-token"
    token.write_text("admin-secret")
    token.chmod(0o600)
    share = {"server": "box:ollama", "max_loaded_models": max_loaded} if max_loaded else {}
    ups = {
        "warm": {"engine": "ollama", "base_url": url, "model": WARM, "keep_alive": "-1",
                 "slots": 2, "vision": True, **share},
        "cold": {"engine": "ollama", "base_url": url, "model": COLD, "keep_alive": 0, **share},
        "coder": {"engine": "ollama", "base_url": url, "model": CODER, "keep_alive": "10m",
                  **share},
        "plain": {"engine": "ollama", "base_url": url, "model": CODER},
    }
    rts = {"chat": {"upstreams": ["warm"]}, "cold": {"upstreams": ["cold"]},
           "code": {"upstreams": ["coder"]}, "plain": {"upstreams": ["plain"]}}
    for name, extra in routes.items():
        rts[name] = {**rts[name], **extra}
    return parse_config({
        "listen": ["127.0.0.1:0"], "upstreams": ups, "routes": rts,
        "routing": {"default_route": "chat", "image_route": "chat"},
        "admin_token_file": str(token),
        "health": {"interval_s": 0.2, "timeout_s": 2},
    })


def _ps(url: str) -> dict[str, dict]:
    return {m["name"]: m for m in _call(url + "/api/ps")["models"]}


def _left_s(entry: dict) -> float:
    return datetime.fromisoformat(entry["expires_at"]).timestamp() - time.time()


def _unload_all(url: str) -> None:
    for m in (WARM, COLD, CODER):
        _call(url + "/api/generate", {"model": m, "keep_alive": 0})
    assert _ps(url) == {}


MSG = [{"role": "user", "content": "hello there"}]


async def test_openai_requests_carry_each_models_keep_alive(standin: str, tmp_path: Path) -> None:
    """-1 stays for good, 0 unloads after the answer, 10m expires in ten minutes."""
    _unload_all(standin)
    async with running(_cfg(standin, tmp_path)) as (base, _st):
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused")
        full = await client.chat.completions.create(model=WARM, messages=MSG)
        assert full.choices[0].message.content.endswith("you said: hello there")
        assert full.choices[0].finish_reason == "stop" and full.usage.prompt_tokens == 2
        assert _ps(standin)[WARM]["expires_at"].startswith("2318")  # -1: for good
        await client.chat.completions.create(model=COLD, messages=MSG)
        assert COLD not in _ps(standin)  # 0: unloaded after the answer
        stream = await client.chat.completions.create(
            model=CODER, messages=MSG, stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.endswith("you said: hello there")
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        assert 500 < _left_s(_ps(standin)[CODER]) <= 600  # "10m"
        done = await client.completions.create(model=COLD, prompt="complete me")
        assert done.choices[0].text.endswith("you said: complete me")
        assert COLD not in _ps(standin)
        emb = await client.embeddings.create(model=CODER, input=["a", "b"])
        assert len(emb.data) == 2 and len(emb.data[1].embedding) == 8
        # a model with no keep_alive of its own: the request goes as it came (server default 0)
        await client.chat.completions.create(model="hearth/plain", messages=MSG)
        assert CODER not in _ps(standin)


async def test_native_requests_carry_the_models_keep_alive(standin: str, tmp_path: Path) -> None:
    _unload_all(standin)
    async with running(_cfg(standin, tmp_path)) as (base, _st), aiohttp.ClientSession() as s:
        async with s.post(base + "/api/chat", json={"model": WARM, "messages": MSG,
                                                    "keep_alive": 0}) as r:
            lines = [json.loads(x) for x in (await r.read()).splitlines() if x.strip()]
        assert lines[-1]["done"] is True  # NDJSON, as Ollama sends it
        assert _ps(standin)[WARM]["expires_at"].startswith("2318")  # the model's -1 won
        async with s.post(base + "/api/generate", json={"model": CODER, "prompt": "x",
                                                        "stream": False}) as r:
            assert (await r.json())["response"].endswith("you said: x")
        assert 500 < _left_s(_ps(standin)[CODER]) <= 600
        async with s.post(base + "/api/embed", json={"model": COLD, "input": "x"}) as r:
            assert r.status == 200
        assert COLD not in _ps(standin)


async def test_translation_tools_images_and_errors(standin: str, tmp_path: Path) -> None:
    """Tool calls and images as Ollama's own openai.go maps them; bad input is a 400."""
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"text": {"type": "string"}}}}}]
    async with running(_cfg(standin, tmp_path)) as (base, _st):
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused")
        r = await client.chat.completions.create(model=WARM, messages=MSG, tools=tools)
        (call,) = r.choices[0].message.tool_calls
        assert r.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "lookup" and call.id and call.type == "function"
        assert json.loads(call.function.arguments) == {"text": "hello there"}
        stream = await client.chat.completions.create(model=WARM, messages=MSG, tools=tools,
                                                      stream=True)
        chunks = [c async for c in stream]
        calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
        assert calls and calls[0].function.name == "lookup"
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        followup = [*MSG, {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": "lookup",
                                                             "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "42"},
            {"role": "user", "content": "and now?"}]
        r = await client.chat.completions.create(model=WARM, messages=followup)
        assert r.choices[0].message.content.endswith("you said: and now?")
        png = base64.b64encode(b"\x89PNG not really").decode()
        image = [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}]
        r = await client.chat.completions.create(model=WARM, messages=image)
        assert r.choices[0].message.content.endswith("(1 images)")
        with pytest.raises(openai.BadRequestError) as err:
            await client.chat.completions.create(model=WARM, messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {
                    "url": "https://example.invalid/cat.png"}}]}])
        assert "invalid image input" in str(err.value)


async def test_keep_warm_holds_until_the_window_ends(standin: str, tmp_path: Path) -> None:
    """Issue 21.3 with OLLAMA_KEEP_ALIVE=0: a request mid-window leaves the model loaded;
    after the window the next answer unloads it."""
    _unload_all(standin)
    window_s = 6.0
    async with running(_cfg(standin, tmp_path)) as (base, st), aiohttp.ClientSession() as s:
        async with s.post(base + "/admin/keep-warm/cold", headers=ADMIN,
                          json={"minutes": window_s / 60}) as r:
            assert r.status == 200 and (await r.json())["preload_status"] == 200
        end = time.time() + window_s
        assert COLD in _ps(standin)
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused")
        await client.chat.completions.create(model=COLD, messages=MSG)  # mid-window
        entry = _ps(standin).get(COLD)
        assert entry is not None, "a request in the window unloaded the model"
        assert _left_s(entry) >= end - time.time() - 1.5  # reaches the window's end
        async with s.post(base + "/api/generate", json={"model": COLD, "prompt": "x",
                                                        "keep_alive": 0}) as r:
            assert r.status == 200  # native too, whatever the client asked
        assert COLD in _ps(standin)
        up = st.upstreams["cold"]
        await wait_until(lambda: up.keep_warm_until <= time.monotonic(), "the window ends",
                         tries=int(window_s * 150))
        await client.chat.completions.create(model=COLD, messages=MSG)  # after the window
        assert COLD not in _ps(standin)


async def test_ending_a_keep_warm_window_lets_the_model_go_at_once(standin: str, tmp_path: Path) -> None:
    """DELETE /admin/keep-warm/<upstream> ends the window: a model the server holds goes
    back to its own keep-alive (here the server's 0: unloaded) at once; a model that is
    not loaded is not loaded for it; an unknown upstream is a 404; no token, a 401."""
    _unload_all(standin)
    async with running(_cfg(standin, tmp_path)) as (base, st), aiohttp.ClientSession() as s:
        async with s.post(base + "/admin/keep-warm/cold", headers=ADMIN, json={"minutes": 30}) as r:
            assert r.status == 200 and (await r.json())["preload_status"] == 200
        assert COLD in _ps(standin)
        async with s.delete(base + "/admin/keep-warm/cold") as r:
            assert r.status == 401 and COLD in _ps(standin)
        async with s.delete(base + "/admin/keep-warm/cold", headers=ADMIN) as r:
            assert r.status == 200, await r.text()
            assert await r.json() == {"upstream": "cold", "ended": True, "loaded": True,
                                      "release_status": 200}
        assert COLD not in _ps(standin)
        assert st.upstreams["cold"].keep_warm_until <= time.monotonic()
        async with s.delete(base + "/admin/keep-warm/cold", headers=ADMIN) as r:  # nothing held
            assert await r.json() == {"upstream": "cold", "ended": False, "loaded": False}
        assert COLD not in _ps(standin)
        async with s.delete(base + "/admin/keep-warm/nope", headers=ADMIN) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "upstream_not_found"


async def test_models_sharing_a_server_take_turns(tmp_path: Path) -> None:
    """Issue 21.4: one model loaded at a time; a request for the other waits for the
    running one instead of forcing a swap; /admin/upstreams and metrics show which one
    is loaded, and the swap's cost is recorded."""
    with _standin(tmp_path, OLLAMA_MAX_LOADED_MODELS="1", OLLAMA_STANDIN_ANSWER_S="1.0",
                  OLLAMA_STANDIN_LOAD_S="0.3") as url:
        cfg = _cfg(url, tmp_path, max_loaded=1,
                   code={"on_busy": "queue", "queue": {"max": 4, "timeout_s": 30}})
        async with running(cfg) as (base, st), aiohttp.ClientSession() as s:
            async def chat(model: str) -> tuple[str, float]:
                async with s.post(base + "/v1/chat/completions",
                                  json={"model": model, "messages": MSG}) as r:
                    assert r.status == 200, await r.text()
                    return r.headers["X-Hearth-Reason"], time.monotonic()

            first = asyncio.create_task(chat(WARM))
            await wait_until(lambda: st.upstreams["warm"].in_flight == 1, "warm admitted")
            second = asyncio.create_task(chat("hearth/code"))
            await wait_until(lambda: len(st.upstreams["coder"].waiters) == 1, "coder waits")
            async with s.get(base + "/admin/upstreams", headers=ADMIN) as r:
                ups = {u["name"]: u for u in (await r.json())["upstreams"]}
            assert ups["coder"]["queued"] == 1 and ups["coder"]["in_flight"] == 0
            assert set(ups["coder"]["shares_server_with"]) == {"warm", "cold"}
            assert ups["coder"]["max_loaded_models"] == 1
            (_, t_first), (reason, t_second) = await asyncio.gather(first, second)
            assert "waited_for_server:coder" in reason and t_second > t_first
            loads = _call(url + "/standin/loads")["loads"]
            assert loads == {WARM: 1, CODER: 1}  # one swap, never back and forth
            coder = st.upstreams["coder"]
            assert coder.swaps == 1 and coder.last_swap_s is not None
            assert coder.last_swap_s >= 0.3  # at least the load the stand-in takes
            await wait_until(lambda: coder.loaded is True and st.upstreams["warm"].loaded is False,
                             "the probe sees the coder loaded", tries=1000)
            async with s.get(base + "/admin/upstreams", headers=ADMIN) as r:
                ups = {u["name"]: u for u in (await r.json())["upstreams"]}
            assert ups["coder"]["loaded"] is True and ups["warm"]["loaded"] is False
            assert ups["coder"]["loaded_until"] and ups["coder"]["last_swap_s"] >= 0.3
            async with s.get(base + "/metrics") as r:
                text = await r.text()
            assert f'hearth_upstream_model_loaded{{model="{CODER}",upstream="coder"}} 1.0' in text
            assert f'hearth_upstream_model_loaded{{model="{WARM}",upstream="warm"}} 0.0' in text
            assert 'hearth_upstream_model_swaps_total{upstream="coder"} 1.0' in text


async def test_a_shared_server_busy_route_spills_instead_of_waiting(tmp_path: Path) -> None:
    """A route whose on_busy is spill goes to its spill route rather than wait its turn."""
    with _standin(tmp_path, OLLAMA_MAX_LOADED_MODELS="1", OLLAMA_STANDIN_ANSWER_S="1.0") as url:
        cfg = _cfg(url, tmp_path, max_loaded=1,
                   code={"on_busy": "spill", "spill": ["plain"]})
        async with running(cfg) as (base, st), aiohttp.ClientSession() as s:
            async def chat(model: str) -> str:
                async with s.post(base + "/v1/chat/completions",
                                  json={"model": model, "messages": MSG}) as r:
                    assert r.status == 200, await r.text()
                    return r.headers["X-Hearth-Upstream"] + " " + r.headers["X-Hearth-Reason"]

            first = asyncio.create_task(chat(WARM))
            await wait_until(lambda: st.upstreams["warm"].in_flight == 1, "warm admitted")
            got = await chat("hearth/code")
            assert got.startswith("plain ") and "spill:code->plain" in got
            await first


def test_keep_alive_values_are_checked() -> None:
    with pytest.raises(Exception, match="keep_alive"):
        parse_config({"listen": ["127.0.0.1:0"], "upstreams": {"u": {
            "engine": "ollama", "base_url": "http://127.0.0.1:1", "model": "m",
            "keep_alive": "forever"}}, "routes": {"r": {"upstreams": ["u"]}},
            "routing": {"default_route": "r"}})


async def test_a_wake_loads_the_hosts_warm_model_again() -> None:
    """Item 2: a model that is to stay warm (keep_alive -1) is loaded after a wake,
    without waiting for its first request."""
    from .standins import StandinUpstream
    from .test_wake import MAC, PacketCatcher

    stand = await StandinUpstream(COLD).start()
    stand.awake = False
    try:
        with PacketCatcher(stand) as catcher:
            sleep = {"sleeps": True, "mac": MAC, "ready_timeout_s": 5}
            cfg = parse_config({
                "listen": ["127.0.0.1:0"],
                "upstreams": {
                    "warm": {"engine": "ollama", "base_url": stand.url, "model": WARM,
                             "keep_alive": "-1", "host": "box", "sleep": sleep},
                    "cold": {"engine": "ollama", "base_url": stand.url, "model": COLD,
                             "keep_alive": "0", "host": "box", "sleep": sleep}},
                "routes": {"chat": {"upstreams": ["warm"]}, "cold": {"upstreams": ["cold"]}},
                "routing": {"default_route": "chat"},
                "wol": {"address": "127.0.0.1", "port": catcher.port},
                "health": {"interval_s": 0.05, "timeout_s": 1, "wake_probe_interval_s": 0.02},
            })
            async with running(cfg) as (base, st), aiohttp.ClientSession() as s:
                await wait_until(lambda: st.upstreams["cold"].state == "asleep", "asleep")
                assert not stand.requests
                async with s.post(base + "/api/generate", json={
                        "model": COLD, "prompt": "wake up", "stream": False}) as r:
                    assert r.status == 200
                assert len(catcher.packets) == 1
                await wait_until(lambda: any(
                    p == "/api/generate" and b.get("model") == WARM and b.get("keep_alive") == -1
                    and not b.get("prompt") for p, b in zip(stand.paths, stand.requests,
                                                            strict=True)),
                    "the warm model is loaded after the wake")
                cold = [b for b in stand.requests if b.get("model") == COLD]
                assert cold == [{"model": COLD, "prompt": "wake up", "stream": False,
                                 "keep_alive": 0}]
    finally:
        await stand.stop()
