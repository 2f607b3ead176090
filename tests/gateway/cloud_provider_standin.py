"""STAND-IN for a cloud provider (OpenRouter or an OpenAI-style API) on 127.0.0.1.

A test double, not a provider: it answers the model-list and chat endpoints in the
shapes the providers document, from the recorded samples below, and nothing leaves
this machine. What it reproduces:

- ``GET {prefix}/models``: OpenRouter's list (``data[]`` with ``id``, ``name``,
  ``context_length``, ``pricing.prompt`` / ``pricing.completion`` as USD-per-token
  strings, ``architecture.input_modalities``), or the OpenAI list (``object: list``,
  ``data[]`` of ``{id, object: model, created, owned_by}``), by ``flavour``.
  The data-policy field (``data_policy: {training, retains_prompts,
  prompt_retention_days}``) follows OpenRouter's ProviderDataPolicy schema; OpenRouter
  publishes it per provider endpoint, the stand-in puts it on the model entry.
- ``POST {prefix}/chat/completions`` and ``{prefix}/completions``: an answer with
  ``usage``; streaming as SSE ending in ``data: [DONE]`` (OpenRouter sends ``usage``
  in the last chunk always, OpenAI only with ``stream_options.include_usage``).
- A retired model (not in the list) answers 404; past ``per_minute`` calls in a rolling
  minute it answers 429 with ``Retry-After`` (OpenRouter's free tier: 20/min).

Pages the shapes and samples come from:
- OpenRouter list models: https://openrouter.ai/docs/api-reference/list-available-models
  (SDK example: https://openrouter.ai/docs/client-sdks/typescript/models/operations/getmodelsresponse)
- OpenRouter data policy: https://openrouter.ai/docs/client-sdks/python/components/privateproviderdatapolicy.md
- OpenRouter limits (free models 20 requests/minute, 429): https://openrouter.ai/docs/api-reference/limits
- OpenAI list models: https://platform.openai.com/docs/api-reference/models/list
- OpenAI chat completions and streaming usage:
  https://platform.openai.com/docs/api-reference/chat/create (stream_options.include_usage)
"""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from typing import Any

from aiohttp import web


def openrouter_model(mid: str, context: int, prompt_usd: str = "0", completion_usd: str = "0",
                     vision: bool = False, training: bool = False,
                     retains: bool = False) -> dict[str, Any]:
    """One entry of OpenRouter's GET /api/v1/models, as its docs show it (recorded
    sample: https://openrouter.ai/docs/api-reference/list-available-models)."""
    return {
        "id": mid, "canonical_slug": mid.split(":")[0], "name": mid, "created": 1741000000,
        "description": "", "context_length": context,
        "architecture": {"modality": "text+image->text" if vision else "text->text",
                         "input_modalities": ["text", "image"] if vision else ["text"],
                         "output_modalities": ["text"], "tokenizer": "Other",
                         "instruct_type": None},
        "pricing": {"prompt": prompt_usd, "completion": completion_usd, "request": "0",
                    "image": "0"},
        "top_provider": {"context_length": context, "max_completion_tokens": None,
                         "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "stop", "tools"],
        "data_policy": {"training": training, "retains_prompts": retains,
                        "prompt_retention_days": 30 if retains else None},
    }


# A recorded-shape sample of OpenRouter's free roster (seed 001's aliases, March 2026).
OPENROUTER_SAMPLE: list[dict[str, Any]] = [
    openrouter_model("qwen/qwen3-coder:free", 262144, retains=True),
    openrouter_model("meta-llama/llama-3.3-70b-instruct:free", 131072),
    openrouter_model("google/gemma-3-27b-it:free", 131072, vision=True),
    openrouter_model("mistralai/mistral-small-3.1-24b-instruct:free", 128000),
]


class StandinProvider:
    """A stand-in cloud provider. ``models``: the live list; ``per_minute``: its own limit."""

    def __init__(self, flavour: str = "openrouter", models: list[dict[str, Any]] | None = None,
                 per_minute: int | None = None, usage: tuple[int, int] = (11, 13)) -> None:
        self.flavour = flavour
        self.prefix = "/api/v1" if flavour == "openrouter" else "/v1"
        self.models = copy.deepcopy(OPENROUTER_SAMPLE if models is None else models)
        self.per_minute = per_minute
        self.usage = usage
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.list_calls = 0
        self.stamps: deque[float] = deque()
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """What an inventory's ``clouds.<p>.base_url`` would say."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def retire(self, mid: str) -> None:
        """Drop a model from the live list (chat to it then answers 404)."""
        self.models = [m for m in self.models if m["id"] != mid]

    async def start(self) -> StandinProvider:
        app = web.Application()
        app.router.add_get(self.prefix + "/models", self._list)
        app.router.add_post(self.prefix + "/chat/completions", self._chat)
        app.router.add_post(self.prefix + "/completions", self._chat)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def _list(self, request: web.Request) -> web.Response:
        self.list_calls += 1
        if self.flavour == "openrouter":
            return web.json_response({"data": self.models})
        return web.json_response({"object": "list", "data": [
            {"id": m["id"], "object": "model", "created": m.get("created", 0),
             "owned_by": "standin"} for m in self.models]})

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None
               ) -> web.Response:
        if self.flavour == "openrouter":  # {"error": {"code": <int>, "message": ...}}
            body = {"error": {"code": status, "message": message}}
        else:
            body = {"error": {"message": message, "type": "invalid_request_error",
                              "param": None, "code": "model_not_found" if status == 404
                              else "rate_limit_exceeded"}}
        return web.json_response(body, status=status, headers=headers)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization", ""))
        mid = body.get("model")
        if mid not in {m["id"] for m in self.models}:
            return self._error(404, f"No endpoints found for {mid}.")
        now = time.monotonic()
        while self.stamps and self.stamps[0] <= now - 60:
            self.stamps.popleft()
        if self.per_minute is not None and len(self.stamps) >= self.per_minute:
            return self._error(429, "Rate limit exceeded: free-models-per-min.",
                               {"Retry-After": "60"})
        self.stamps.append(now)
        p, c = self.usage
        usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        if body.get("stream") is not True:
            return web.json_response({
                "id": "gen-standin", "object": "chat.completion", "created": 0, "model": mid,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"cloud says hi ({mid})"}}],
                "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in ("cloud", " says", " hi"):
            await resp.write(_sse({"id": "gen-standin", "object": "chat.completion.chunk",
                                   "model": mid, "choices": [{"index": 0, "delta":
                                                              {"content": piece}}]}))
        want = (self.flavour == "openrouter"
                or (body.get("stream_options") or {}).get("include_usage"))
        if want:
            await resp.write(_sse({"id": "gen-standin", "object": "chat.completion.chunk",
                                   "model": mid, "choices": [], "usage": usage}))
        await resp.write(b"data: [DONE]\n\n")
        return resp


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"
