"""The OpenAI <-> Ollama-native translation and the keep-alive arithmetic
(hearth/gateway/ollama.py), checked against what Ollama's own openai/openai.go does."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from hearth.gateway import ollama
from hearth.gateway.config import UpstreamCfg
from hearth.gateway.upstreams import Upstream


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0), (0, 0), ("-1", math.inf), (-1, math.inf), ("24h", 86400), ("1h30m", 5400),
     ("300", 300), (90, 90), ("250ms", 0.25), ("-5m", math.inf)],
)  # fmt: skip
def test_keep_alive_seconds(value: Any, seconds: float) -> None:
    assert ollama.keep_alive_seconds(value) == seconds


@pytest.mark.parametrize("value", ["forever", "5 m", "1d", "", True])
def test_bad_keep_alive(value: Any) -> None:
    with pytest.raises(ValueError, match="keep_alive"):
        ollama.keep_alive_seconds(value)


def _up(keep_alive: Any = None, engine: str = "ollama") -> Upstream:
    return Upstream("u", UpstreamCfg(engine=engine, base_url="http://127.0.0.1:1", model="m",
                                     keep_alive=keep_alive))


def test_keep_alive_sent_and_the_keep_warm_window() -> None:
    now = time.monotonic()
    assert ollama.keep_alive_for(_up()) is None  # nothing to apply: the server's default
    assert ollama.keep_alive_for(_up("-1")) == -1
    assert ollama.keep_alive_for(_up("0")) == 0
    assert ollama.keep_alive_for(_up("24h")) == 86400
    assert ollama.keep_alive_for(_up("24h", engine="vllm")) is None
    up = _up("0")
    up.keep_warm_until = now + 120.2
    assert ollama.keep_alive_for(up, now) == 121  # reaches the window's end
    up = _up("24h")
    up.keep_warm_until = now + 60
    assert ollama.keep_alive_for(up, now) == 86400  # the longer of the two
    up = _up("-1")
    up.keep_warm_until = now + 60
    assert ollama.keep_alive_for(up, now) == -1
    up = _up("0")
    up.keep_warm_until = now - 1  # the window is over
    assert ollama.keep_alive_for(up, now) == 0


def test_chat_request_as_ollama_maps_it() -> None:
    body = ollama.chat_request({
        "model": "x", "stream": True, "max_tokens": 50, "stop": "END", "seed": 7,
        "response_format": {"type": "json_object"}, "reasoning_effort": "none",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url",
                                          "image_url": {"url": "data:image/png;base64,QUJD"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        ]})
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "look"},
        {"role": "user", "content": "", "images": ["QUJD"]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "f", "arguments": {"a": 1}}}]},
        {"role": "tool", "content": "done", "tool_name": "f"},
    ]
    assert body["options"] == {"stop": ["END"], "num_predict": 50, "temperature": 1.0,
                               "seed": 7, "top_p": 1.0}
    assert body["format"] == "json" and body["think"] is False and body["stream"] is True
    assert body["tools"][0]["function"]["name"] == "f"
    with pytest.raises(ollama.BadRequest, match="invalid image input"):
        ollama.chat_request({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://x/cat.png"}}]}]})
    with pytest.raises(ollama.BadRequest, match="invalid tool call arguments"):
        ollama.chat_request({"messages": [{"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "f", "arguments": "{not json"}}]}]})


def _sse(raw: bytes) -> list[Any]:
    return [json.loads(e[6:]) if e != b"data: [DONE]" else "[DONE]"
            for e in raw.split(b"\n\n") if e]


def test_stream_becomes_sse_with_usage_and_done() -> None:
    tr = ollama.Translator("/api/chat", stream=True, include_usage=True)
    lines = [{"model": "m", "message": {"role": "assistant", "content": "Hel"}, "done": False},
             {"model": "m", "message": {"role": "assistant", "content": "lo"}, "done": False},
             {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True,
              "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2,
              "load_duration": 2_500_000_000}]
    raw = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    out = tr.feed(raw[:17]) + tr.feed(raw[17:]) + tr.end()  # split mid-line
    events = _sse(out)
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["delta"]["content"] for e in events[:3]) == "Hello"
    assert events[2]["choices"][0]["finish_reason"] == "stop"
    assert events[3]["choices"] == [] and events[3]["usage"] == {
        "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert {e["object"] for e in events[:4]} == {"chat.completion.chunk"}
    assert tr.load_duration_s == 2.5


def test_stream_error_and_unfinished_stream_never_say_done() -> None:
    tr = ollama.Translator("/api/chat", stream=True, include_usage=False)
    out = tr.feed(b'{"error":"model runner crashed"}\n') + tr.end()
    assert b"[DONE]" not in out and b"model runner crashed" in out
    tr = ollama.Translator("/api/generate", stream=True, include_usage=False)
    out = tr.feed(b'{"model":"m","response":"a","done":false}\n') + tr.end()
    assert b"[DONE]" not in out


def test_full_answers_tool_calls_completion_embeddings_errors() -> None:
    tr = ollama.Translator("/api/chat", stream=False, include_usage=False)
    got = json.loads(tr.full(200, json.dumps({
        "model": "m", "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
        "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "f", "arguments": {"a": 1}}}]}}).encode()))
    choice = got["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and got["object"] == "chat.completion"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert json.loads(call["function"]["arguments"]) == {"a": 1}
    assert got["created"] == 1767225600
    tr = ollama.Translator("/api/generate", stream=False, include_usage=False)
    got = json.loads(tr.full(200, b'{"model":"m","response":"hi","done":true,'
                                  b'"done_reason":"length","eval_count":1}'))
    assert got["object"] == "text_completion" and got["choices"][0]["text"] == "hi"
    assert got["choices"][0]["finish_reason"] == "length"
    tr = ollama.Translator("/api/embed", stream=False, include_usage=False, encoding="base64")
    got = json.loads(tr.full(200, b'{"model":"m","embeddings":[[1.0,0.5]],'
                                  b'"prompt_eval_count":2}'))
    assert got["data"][0]["embedding"] == "AACAPwAAAD8=" and got["usage"]["total_tokens"] == 2
    err = json.loads(tr.full(404, b'{"error":"model \\"m\\" not found"}'))
    assert err["error"]["message"] == 'model "m" not found'


def test_a_model_unloaded_after_its_answer_makes_the_next_a_load_not_a_swap() -> None:
    """Swap accounting on a one-model-at-a-time server: after a keep_alive 0 answer the
    next model is loaded into an empty server (no swap); after a kept model it is a swap."""
    from hearth.gateway.upstreams import link_groups

    def member(name: str, keep: str) -> Upstream:
        return Upstream(name, UpstreamCfg(engine="ollama", base_url="http://127.0.0.1:1",
                                          model=name, keep_alive=keep, server="box",
                                          max_loaded_models=1))

    ups = {"a": member("a", "0"), "b": member("b", "24h"), "c": member("c", "24h")}
    link_groups(ups)
    a, b, c = ups["a"], ups["b"], ups["c"]
    a.end_swap_watch(a.begin_swap_watch(), 200)
    assert a.group is not None and a.group.loaded == []  # unloaded after its answer
    b.end_swap_watch(b.begin_swap_watch(), 200)
    assert b.swaps == 0 and b.group.loaded == ["b"]
    c.end_swap_watch(c.begin_swap_watch(), 200)
    assert c.swaps == 1 and c.last_swap_s is not None and c.group.loaded == ["c"]
