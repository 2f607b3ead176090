"""Per-model keep-alive for Ollama upstreams, and the OpenAI -> Ollama-native translation
it needs.

Ollama takes ``keep_alive`` per request on its native API (``/api/chat``,
``/api/generate``, ``/api/embed``, ``/api/embeddings``; docs/api.md), but its
OpenAI-compatible endpoints do not: ``ChatCompletionRequest`` in Ollama's
``openai/openai.go`` has no such field, so ``/v1/chat/completions`` always runs with
the server's ``OLLAMA_KEEP_ALIVE`` (ollama/ollama#11458). So when an Ollama upstream
has a keep-alive to apply (its own ``keep_alive``, or a keep-warm window), the gateway
sends OpenAI-style requests to the native endpoint with ``keep_alive`` set and turns
the answer back into OpenAI's shape the way Ollama's own ``openai.go`` does
(``FromChatRequest`` / ``ToChatCompletion`` / ``ToChunk`` / ``FromCompleteRequest`` /
``ToCompletion`` / ``ToEmbeddingList``): SSE chunks ending in ``[DONE]``, usage from
``prompt_eval_count`` / ``eval_count``, ``finish_reason`` (``tool_calls`` when the
model called a tool), tool calls with JSON-string arguments, ``image_url`` data URLs
as base64 ``images``.

The keep-alive sent is a whole number of seconds (``-1`` = forever): Ollama's
``api.Duration`` reads a JSON number as seconds and a negative one as "forever".
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import error_body, sse_error_event

if TYPE_CHECKING:
    from .upstreams import Upstream

FOREVER = math.inf
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
NATIVE = frozenset({"/api/chat", "/api/generate", "/api/embed", "/api/embeddings"})
TRANSLATED = {"/v1/chat/completions": "/api/chat", "/v1/completions": "/api/generate",
              "/v1/embeddings": "/api/embed"}
_IMAGE_PREFIXES = ("data:;base64,", *(f"data:image/{t};base64," for t in
                                      ("jpeg", "jpg", "png", "webp")))


def keep_alive_seconds(value: float | str) -> float:
    """A keep-alive as seconds (``inf`` = forever): a number of seconds, a plain
    number string, or a Go duration (``"24h"``, ``"1h30m"``); negative = forever."""
    if isinstance(value, bool):
        raise ValueError(f"keep_alive {value!r}: a number of seconds or a duration like 24h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        if re.fullmatch(r"\d+(\.\d+)?", body):
            seconds = sign * float(body)
        else:
            parts = _PART.findall(body)
            if not parts or "".join(n + u for n, u in parts) != body:
                raise ValueError(f"keep_alive {value!r}: a number of seconds or a duration "
                                 "like 24h, 30m, 1h30m (negative = forever)")
            seconds = sign * sum(float(n) * _UNITS[u] for n, u in parts)
    return FOREVER if seconds < 0 else seconds


def keep_alive_for(up: Upstream, now: float | None = None) -> int | None:
    """The ``keep_alive`` (whole seconds, -1 = forever) to send with a request to
    ``up`` now, or None when the gateway has none to apply (the server default holds).

    During a keep-warm window it reaches at least the window's end.
    """
    if up.cfg.engine != "ollama":
        return None
    base = None if up.cfg.keep_alive is None else keep_alive_seconds(up.cfg.keep_alive)
    left = up.keep_warm_until - (time.monotonic() if now is None else now)
    if left > 0:
        base = max(base or 0.0, left)
    if base is None:
        return None
    return api_keep_alive(base)


def api_keep_alive(seconds: float) -> int:
    """``seconds`` as Ollama's API takes a keep_alive: whole seconds, -1 = for good."""
    return -1 if seconds == FOREVER else math.ceil(seconds)


class BadRequest(ValueError):
    """The OpenAI request cannot be said in Ollama's native API (a 400 to the client)."""


@dataclass(slots=True)
class Forward:
    """What goes upstream: the path, the body bytes and how to read the answer."""

    path: str
    data: bytes | None  # None: the caller's own body (nothing to change)
    translator: Translator | None = None


def prepare(up: Upstream, path: str, payload: dict[str, Any]) -> Forward:
    """The upstream request for ``payload`` on ``path`` with ``up``'s keep-alive applied."""
    keep = keep_alive_for(up)
    if keep is None or (path not in NATIVE and path not in TRANSLATED):
        return Forward(path, None)
    if path in NATIVE:
        body = {**payload, "model": up.cfg.model, "keep_alive": keep}
        return Forward(path, _dump(body))
    native = TRANSLATED[path]
    if path == "/v1/chat/completions":
        body = chat_request(payload)
    elif path == "/v1/completions":
        body = completion_request(payload)
    else:
        body = {"input": payload.get("input")}
        if payload.get("dimensions"):
            body["dimensions"] = payload["dimensions"]
    body.update(model=up.cfg.model, keep_alive=keep)
    tr = Translator(native, bool(payload.get("stream")) and native != "/api/embed",
                    _include_usage(payload), str(payload.get("encoding_format") or ""))
    return Forward(native, _dump(body), tr)


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _include_usage(payload: dict[str, Any]) -> bool:
    so = payload.get("stream_options")
    return isinstance(so, dict) and so.get("include_usage") is True


# -- requests (Ollama's openai.FromChatRequest / FromCompleteRequest) ----------------

def _options(p: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    stop = p.get("stop")
    if isinstance(stop, str):
        opts["stop"] = [stop]
    elif isinstance(stop, list):
        opts["stop"] = [s for s in stop if isinstance(s, str)]
    limit = p.get("max_tokens", p.get("max_completion_tokens"))
    if limit is not None:
        opts["num_predict"] = limit
    opts["temperature"] = 1.0 if p.get("temperature") is None else p["temperature"]
    for key in ("seed", "frequency_penalty", "presence_penalty"):
        if p.get(key) is not None:
            opts[key] = p[key]
    opts["top_p"] = 1.0 if p.get("top_p") is None else p["top_p"]
    return opts


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for c in calls if isinstance(calls, list) else []:
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict):
            raise BadRequest("invalid tool call")
        args = fn.get("arguments") or "{}"
        try:
            parsed = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            raise BadRequest("invalid tool call arguments") from None
        out.append({"function": {"name": fn.get("name"), "arguments": parsed}})
    return out


def _image(part: dict[str, Any]) -> str:
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str):
        raise BadRequest("invalid message format")
    for prefix in _IMAGE_PREFIXES:
        if url.startswith(prefix):
            return url[len(prefix):]
    raise BadRequest("invalid image input (Ollama takes base64 data URLs of jpeg, png, webp)")


def chat_request(p: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request as an Ollama ``/api/chat`` body (keep_alive added later)."""
    messages: list[dict[str, Any]] = []
    ids = {c.get("id"): (c.get("function") or {}).get("name")
           for m in p.get("messages") or [] if isinstance(m, dict)
           for c in (m.get("tool_calls") or []) if isinstance(c, dict)}
    for m in p.get("messages") or []:
        if not isinstance(m, dict):
            raise BadRequest("invalid message format")
        role, content = m.get("role"), m.get("content")
        extra: dict[str, Any] = {}
        if str(role).lower() == "tool":
            name = m.get("name") or ids.get(m.get("tool_call_id"))
            if name:
                extra["tool_name"] = name
        if m.get("reasoning"):
            extra["thinking"] = m["reasoning"]
        calls = _tool_calls(m.get("tool_calls"))
        if isinstance(content, str):
            messages.append({"role": role, "content": content, **extra,
                             **({"tool_calls": calls} if calls else {})})
        elif isinstance(content, list):
            start = len(messages)
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    messages.append({"role": role, "content": part["text"]})
                elif kind == "image_url":
                    messages.append({"role": role, "content": "", "images": [_image(part)]})
                else:
                    raise BadRequest("invalid message format")
            if calls and len(messages) > start:
                messages[-1].update(tool_calls=calls, **extra)
        elif calls:
            messages.append({"role": role, "content": "", "tool_calls": calls, **extra})
        else:
            raise BadRequest(f"invalid message content type: {type(content).__name__}")
    body: dict[str, Any] = {"messages": messages, "options": _options(p),
                            "stream": bool(p.get("stream"))}
    if p.get("tools"):
        body["tools"] = p["tools"]
    fmt = p.get("response_format")
    if isinstance(fmt, dict):
        kind = str(fmt.get("type", "")).strip().lower()
        if kind == "json_object":
            body["format"] = "json"
        elif kind == "json_schema" and isinstance(fmt.get("json_schema"), dict):
            body["format"] = fmt["json_schema"].get("schema")
    effort = (p.get("reasoning") or {}).get("effort") if isinstance(
        p.get("reasoning"), dict) else p.get("reasoning_effort")
    if effort:
        if effort not in ("high", "medium", "low", "none"):
            raise BadRequest(f"invalid reasoning value: '{effort}'")
        body["think"] = False if effort == "none" else effort
    return body


def completion_request(p: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI completion request as an Ollama ``/api/generate`` body."""
    prompt = p.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("Ollama takes one string prompt")
    body: dict[str, Any] = {"prompt": prompt, "options": _options(p),
                            "stream": bool(p.get("stream"))}
    if p.get("suffix"):
        body["suffix"] = p["suffix"]
    return body


# -- answers (Ollama's openai.ToChatCompletion / ToChunk / ToCompletion / ...) --------

class Translator:
    """Turns Ollama-native answers (JSON, NDJSON) into OpenAI's (JSON, SSE)."""

    def __init__(self, native: str, stream: bool, include_usage: bool,
                 encoding: str = "") -> None:
        self.native, self.stream, self.include_usage = native, stream, include_usage
        self.encoding = encoding
        prefix = "chatcmpl" if native == "/api/chat" else "cmpl"
        self.id = f"{prefix}-{os.urandom(6).hex()}"
        self.buf = b""
        self.tool_call_sent = False
        self.finished = False  # no more lines are read (done, or an error)
        self.completed = False  # Ollama said done: the SSE stream ends with [DONE]
        self.load_duration_s: float | None = None

    content_type = property(lambda self: "text/event-stream" if self.stream
                            else "application/json")

    def full(self, status: int, raw: bytes) -> bytes:
        """A whole (non-streamed) answer or an error answer."""
        try:
            data = json.loads(raw)
        except ValueError:
            return raw if status != 200 else error_body(502, "Ollama sent no JSON")
        if status != 200 or not isinstance(data, dict) or "error" in data:
            msg = data.get("error") if isinstance(data, dict) else None
            return error_body(status if status != 200 else 502, str(msg or raw[:300]))
        self._timing(data)
        if self.native == "/api/embed":
            return json.dumps(self._embeddings(data)).encode()
        if self.native == "/api/chat":
            return json.dumps(self._chat(data)).encode()
        return json.dumps(self._completion(data)).encode()

    def feed(self, chunk: bytes) -> bytes:
        """Some bytes of an NDJSON stream -> the SSE events of the lines they complete."""
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return b"".join(self._line(line) for line in lines if line.strip())

    def end(self) -> bytes:
        """What follows the last byte: the rest of the stream, ``[DONE]`` if it finished."""
        tail = self._line(self.buf) if self.buf.strip() else b""
        self.buf = b""
        return tail + (b"data: [DONE]\n\n" if self.completed else b"")

    def _line(self, line: bytes) -> bytes:
        if self.finished:
            return b""
        try:
            data = json.loads(line)
        except ValueError:
            self.finished = True  # never a fake [DONE] after garbage
            return sse_error_event("Ollama sent a line that is not JSON")
        if not isinstance(data, dict) or "error" in data:
            self.finished = True
            msg = data.get("error") if isinstance(data, dict) else data
            return sse_error_event(f"Ollama: {msg}")
        out = self._event(self._chunk(data))
        if data.get("done"):
            self._timing(data)
            self.finished = self.completed = True
            if self.include_usage:
                out += self._event({**self._base("chunk"), "choices": [],
                                    "usage": _usage(data)})
        return out

    @staticmethod
    def _event(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    def _timing(self, data: dict[str, Any]) -> None:
        ns = data.get("load_duration")
        if isinstance(ns, int | float):
            self.load_duration_s = ns / 1e9

    def _base(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        chat = self.native == "/api/chat"
        obj = {"chunk": "chat.completion.chunk" if chat else "text_completion",
               "full": "chat.completion" if chat else "text_completion"}[kind]
        created = _created(data) if data is not None and kind == "full" else int(time.time())
        return {"id": self.id, "object": obj, "created": created,
                "model": (data or {}).get("model", ""), "system_fingerprint": "fp_ollama"}

    def _chat(self, data: dict[str, Any]) -> dict[str, Any]:
        msg = data.get("message") or {}
        calls = _openai_calls(msg.get("tool_calls"))
        reason = "tool_calls" if calls else (data.get("done_reason") or None)
        message: dict[str, Any] = {"role": msg.get("role", "assistant"),
                                   "content": msg.get("content", "")}
        if calls:
            message["tool_calls"] = calls
        if msg.get("thinking"):
            message["reasoning"] = msg["thinking"]
        return {**self._base("full", data),
                "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                "usage": _usage(data)}

    def _completion(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**self._base("full", data),
                "choices": [{"text": data.get("response", ""), "index": 0,
                             "finish_reason": data.get("done_reason") or None}],
                "usage": _usage(data)}

    def _chunk(self, data: dict[str, Any]) -> dict[str, Any]:
        reason = data.get("done_reason") or None
        if self.native != "/api/chat":
            return {**self._base("chunk", data), "choices": [
                {"text": data.get("response", ""), "index": 0, "finish_reason": reason}]}
        msg = data.get("message") or {}
        calls = _openai_calls(msg.get("tool_calls"))
        self.tool_call_sent = self.tool_call_sent or bool(calls)
        delta: dict[str, Any] = {"role": "assistant", "content": msg.get("content", "")}
        if calls:
            delta["tool_calls"] = calls
        if msg.get("thinking"):
            delta["reasoning"] = msg["thinking"]
        if reason and self.tool_call_sent:
            reason = "tool_calls"
        return {**self._base("chunk", data),
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    def _embeddings(self, data: dict[str, Any]) -> dict[str, Any]:
        import base64
        import struct

        items = []
        for i, vec in enumerate(data.get("embeddings") or []):
            emb: Any = vec
            if self.encoding.lower() == "base64":
                emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            items.append({"object": "embedding", "embedding": emb, "index": i})
        n = data.get("prompt_eval_count") or 0
        return {"object": "list", "data": items, "model": data.get("model", ""),
                "usage": {"prompt_tokens": n, "total_tokens": n}}


def _openai_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(calls if isinstance(calls, list) else []):
        fn = c.get("function") or {}
        out.append({"id": c.get("id") or f"call_{os.urandom(6).hex()}",
                    "index": fn.get("index", i), "type": "function",
                    "function": {"name": fn.get("name", ""),
                                 "arguments": json.dumps(fn.get("arguments") or {})}})
    return out


def _usage(data: dict[str, Any]) -> dict[str, int]:
    p, c = int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _created(data: dict[str, Any]) -> int:
    try:
        return int(datetime.fromisoformat(str(data.get("created_at"))).timestamp())
    except ValueError:
        return int(time.time())
