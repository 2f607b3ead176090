"""The rest of the Ollama API that clients call: embed, embeddings, show, version, ps.

``/api/embed``, ``/api/embeddings`` and ``/api/show`` are decided and proxied like
``/api/chat`` (same keys, same route limits, Ollama upstreams only).
``/api/version`` is answered by the gateway; ``/api/ps`` asks every awake Ollama
upstream (an asleep one is not woken: it has nothing loaded) and merges the models
hearth serves. open-webui calls ``/api/version`` (connection check), ``/api/tags``
and ``/api/ps`` (model list) when it starts (``backend/open_webui/routers/ollama.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import web

from .body import Reject
from .errors import error_response
from .state import GatewayState

#: the Ollama API version the gateway answers with (clients compare it; the
#: endpoints it serves are those of Ollama 0.5+, where /api/embed exists)
OLLAMA_API_VERSION = "0.6.0"

#: POST paths proxied to an Ollama upstream: path -> required body field
PROXIED = {"/api/embed": "input", "/api/embeddings": "prompt", "/api/show": "model"}
EMBED_PATHS = frozenset({"/v1/embeddings", "/api/embed", "/api/embeddings"})
STREAMING_NATIVE = frozenset({"/api/chat", "/api/generate"})


def normalise_show(payload: dict[str, Any]) -> bool:
    """Older clients send ``{"name": ...}`` to /api/show; True if the body changed."""
    if "model" not in payload and isinstance(payload.get("name"), str):
        payload["model"] = payload.pop("name")
        return True
    return False


async def version(request: web.Request, state: GatewayState, auth: Any) -> web.Response:
    """GET /api/version: answered by the gateway (a client key is still required)."""
    try:
        auth(request, state)
    except Reject as exc:
        return error_response(exc.status, exc.message, exc.param, exc.code)
    return web.json_response({"version": OLLAMA_API_VERSION})


async def _ps_of(sess: aiohttp.ClientSession, url: str, timeout: float) -> list[dict[str, Any]]:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
        async with sess.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            if r.status == 200:
                data = await r.json(content_type=None)
                models = data.get("models") if isinstance(data, dict) else None
                return [m for m in models or [] if isinstance(m, dict)]
    return []


async def ps(request: web.Request, state: GatewayState, auth: Any) -> web.Response:
    """GET /api/ps: the served models loaded on awake Ollama upstreams (none is woken)."""
    try:
        auth(request, state)
    except Reject as exc:
        return error_response(exc.status, exc.message, exc.param, exc.code)
    cfg = state.cfg
    ups = [u for u in state.upstreams.values() if u.cfg.engine == "ollama" and u.usable()]
    by_url: dict[str, set[str]] = {}
    for u in ups:
        by_url.setdefault(u.cfg.base_url, set()).add(u.cfg.model)
    sessions = {u.cfg.base_url: u.ensure_session(cfg.timeouts.connect_s) for u in ups}
    results = await asyncio.gather(*(_ps_of(sessions[b], b + "/api/ps", cfg.health.timeout_s)
                                     for b in by_url))
    seen: dict[str, dict[str, Any]] = {}
    for base, models in zip(by_url, results, strict=True):
        for m in models:
            name = m.get("name") or m.get("model")
            if isinstance(name, str) and _served(name, by_url[base]) and name not in seen:
                seen[name] = m
    return web.json_response({"models": [seen[n] for n in sorted(seen)]})


def _served(name: str, served: set[str]) -> bool:
    """Ollama names ``qwen`` and ``qwen:latest`` the same model."""
    return name in served or name.removesuffix(":latest") in served or (
        ":" not in name and f"{name}:latest" in served)
