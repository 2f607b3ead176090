"""The aiohttp application: OpenAI-compatible API, Ollama pass-through, probes, metrics."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from multidict import istr
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import admin, cloud, cloudpolicy, ollama_api, spend, statuspage
from .body import Reject, arrived_body, parse_json, wait_body
from .config import ClientCfg, GatewayConfig
from .errors import error_response
from .guard import GuardedRunner
from .proxy import Ctx, Proxy
from .routing import RoutingError
from .state import GatewayState
from .upstreams import DEGRADED, HEALTHY

log = logging.getLogger("hearth.gateway")
STATE: web.AppKey[GatewayState] = web.AppKey("state", GatewayState)
PROXY: web.AppKey[Proxy] = web.AppKey("proxy", Proxy)

_OLLAMA = frozenset({"ollama"})
# header names as istr: a case-insensitive look-up of a plain str folds its case each time
_X_REQUEST_ID, _X_API_KEY, _X_ROUTE = istr("X-Request-Id"), istr("X-Api-Key"), istr("X-Hearth-Route")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUIRED = {"/v1/chat/completions": "messages", "/v1/completions": "prompt",
             "/v1/embeddings": "input", "/api/chat": "messages", "/api/generate": None,
             **ollama_api.PROXIED}


@functools.lru_cache(maxsize=1024)
def _is_loopback(remote: str | None) -> bool:
    """Whether a peer address is a loopback one (cached: callers repeat)."""
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A request id unique within this process, unlikely to repeat across processes."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


def authenticate(request: web.Request, st: GatewayState) -> tuple[str, ClientCfg | None]:
    """Return (client name, its config); raise :class:`Reject` (401/429)."""
    pol = st.policy
    if not pol.clients:
        if pol.cfg.allow_unauthenticated_loopback and _is_loopback(request.remote):
            return "anonymous-loopback", None
        raise Reject(401, "No client keys are configured: only loopback callers are "
                          "allowed, unauthenticated", None, "invalid_api_key")
    auth = request.headers.get(hdrs.AUTHORIZATION, "")
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get(
        _X_API_KEY, "")
    found = st.client_for(key) if key else None
    if found is None:
        raise Reject(401, "Incorrect or missing API key", None, "invalid_api_key")
    name, c = found
    wait = st.rate_check(name, c)
    if wait:
        raise Reject(429, f"Rate limit of {c.rate_per_minute}/min reached for client "
                          f"'{name}'", None, "rate_limit_exceeded", retry_after=wait)
    return name, c


def _check_shape(path: str, payload: dict[str, Any]) -> None:
    field = _REQUIRED.get(path)
    if field and field not in payload:
        raise Reject(400, f"Missing required parameter: '{field}'", field, "missing_param")
    if field == "messages" and not isinstance(payload["messages"], list):
        raise Reject(400, "'messages' must be an array", "messages", "invalid_type")
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise Reject(400, "'model' must be a string", "model", "invalid_type")
    if "stream" in payload and not isinstance(payload["stream"], bool):
        raise Reject(400, "'stream' must be a boolean", "stream", "invalid_type")


def _strip_hints(payload: dict[str, Any]) -> bool:
    """Drop ``metadata.hearth_route`` (ours, not the upstream's); True if it was there."""
    meta = payload.get("metadata")
    if isinstance(meta, dict) and "hearth_route" in meta:
        meta = {k: v for k, v in meta.items() if k != "hearth_route"}
        if meta:
            payload["metadata"] = meta
        else:
            del payload["metadata"]
        return True
    return False


async def _serve(request: web.Request, st: GatewayState, proxy: Proxy, path: str,
                 native: bool) -> web.StreamResponse:
    ctx = Ctx(request_id=request.headers.get(_X_REQUEST_ID) or new_request_id(),
              endpoint=path)
    try:
        name, client = authenticate(request, st)
        ctx.client = name
        spend.check_budget(st, name, client)
        limit = st.cfg.max_body_bytes
        raw = arrived_body(request, limit)  # the usual case: no await for a body at hand
        if raw is None:
            raw = await wait_body(request, limit, st.cfg.limits.body_timeout_s)
        payload = parse_json(raw)
        renamed = path == "/api/show" and ollama_api.normalise_show(payload)
        _check_shape(path, payload)
        model = payload.get("model") or ""
        ctx.model = model
        if model.startswith("cloud/"):
            if native:
                raise Reject(404, "cloud models are not reachable via the Ollama API", "model",
                             "model_not_found")
            return await cloud.handle(request, st, ctx, client, payload, path)
        pol = st.policy
        d = pol.router.decide(payload, request.headers.get(_X_ROUTE),
                              embeddings=path in ollama_api.EMBED_PATHS)
        ctx.bucket, ctx.route, ctx.reason = d.bucket, d.route, d.reason
        ctx.est_tokens, ctx.has_image = d.est_tokens, d.has_image
        if client is not None and client.routes is not None and d.route not in client.routes:
            what = f"route '{d.route}'" if d.route else f"'{model}' (it is on no route)"
            raise Reject(403, f"Client '{name}' may not use {what}", "model",
                         "route_not_allowed")
        if native:
            names = d.upstreams or pol.cfg.routes[d.route].upstreams
            if not any(pol.cfg.upstreams[n].engine == "ollama" for n in names):
                raise Reject(404, f"The model '{model}' is not served by an Ollama upstream "
                                  "(use the OpenAI API)", "model", "model_not_found")
        # the client's bytes go upstream as they are unless the body had to change
        forward: bytes | None = None if _strip_hints(payload) or renamed else raw
        stream = payload.get("stream", path in ollama_api.STREAMING_NATIVE) is True
        if path in ollama_api.PROXIED:
            stream = False  # one JSON answer, whatever the body says
        return await proxy.handle(
            request, ctx, d, payload, path, stream, ndjson=native,
            engines=_OLLAMA if native else None, raw=forward)
    except RoutingError as exc:
        ctx.status, ctx.error = exc.status, exc.message
        return error_response(exc.status, exc.message, exc.param, exc.code, ctx.headers())
    except Reject as exc:
        ctx.status, ctx.error = exc.status, exc.message
        return error_response(exc.status, exc.message, exc.param, exc.code, ctx.headers(),
                              exc.retry_after)
    finally:
        if not ctx.status:
            ctx.status, ctx.error = 499, ctx.error or "client went away"
        _record(st, ctx)


def _record(st: GatewayState, ctx: Ctx) -> None:
    """Metrics for every request; a decision-log line if a decision log is configured."""
    latency = time.perf_counter() - ctx.t0
    st.metrics.request_done(ctx.route or "-", ctx.bucket or "-", ctx.status, latency,
                            ctx.ttft_ms / 1000 if ctx.ttft_ms is not None else None)
    st.recent.record(route=ctx.route, upstream=ctx.upstream, status=ctx.status, reason=ctx.reason,
                     fallback=ctx.fallback, latency_s=latency)
    if not st.decisions.enabled:
        return
    st.decisions.write({
        "ts": time.time(), "request_id": ctx.request_id, "client": ctx.client,
        "endpoint": ctx.endpoint, "model": ctx.model, "bucket": ctx.bucket, "route": ctx.route,
        "reason": ctx.reason, "upstream": ctx.upstream, "status": ctx.status,
        "latency_ms": round(latency * 1000, 3),
        "ttft_ms": round(ctx.ttft_ms, 3) if ctx.ttft_ms is not None else None,
        "fallback": ctx.fallback, "est_tokens": ctx.est_tokens, "has_image": ctx.has_image,
        "error": ctx.error,
    })


_ENDPOINTS: dict[str, bool] = {  # the model endpoints served by _serve: path -> Ollama-native
    "/v1/chat/completions": False, "/v1/completions": False, "/v1/embeddings": False,
    "/api/chat": True, "/api/generate": True, **dict.fromkeys(ollama_api.PROXIED, True)}


def _endpoint(app: web.Application, path: str, native: bool) -> Handler:
    """POST ``path``: :func:`_serve` for it (Ollama-native ones: Ollama upstreams only),
    with ``app``'s state and proxy bound once (not looked up in the app per request)."""
    handler = _guarded(functools.partial(_serve, st=app[STATE], proxy=app[PROXY], path=path,
                                         native=native))
    handler.__doc__ = f"POST {path}" + (" (Ollama-native, Ollama upstreams only)." if native
                                        else ".")
    return handler


async def ollama_version(request: web.Request) -> web.Response:
    """GET /api/version."""
    return await ollama_api.version(request, request.app[STATE], authenticate)


async def ollama_ps(request: web.Request) -> web.Response:
    """GET /api/ps."""
    return await ollama_api.ps(request, request.app[STATE], authenticate)


def _auth_only(request: web.Request) -> ClientCfg | None:
    return authenticate(request, request.app[STATE])[1]


async def models(request: web.Request) -> web.Response:
    """GET /v1/models: route aliases, concrete served models, cloud models if allowed."""
    st = request.app[STATE]
    try:
        name, client = authenticate(request, st)
    except Reject as exc:
        return error_response(exc.status, exc.message, exc.param, exc.code)
    cfg = st.cfg
    prefix = cfg.routing.alias_prefix.rstrip("/")
    ids = [f"{prefix}/auto"] + [f"{prefix}/{r}" for r in cfg.routes]
    ids += sorted({u.model for u in cfg.upstreams.values()})
    ids += sorted(cfg.model_aliases)
    if client is not None and client.cloud.mode != "none":
        ids += [f"cloud/{ref}" for ref, hows in cloudpolicy.reachable(cfg, name, client).items()
                if "by_name" in hows or "escalation" in hows]
    created = int(st.started)
    data = [{"id": i, "object": "model", "created": created,
             "owned_by": "cloud" if i.startswith("cloud/") else "hearth"} for i in ids]
    return web.json_response({"object": "list", "data": data})


async def ollama_tags(request: web.Request) -> web.Response:
    """GET /api/tags: the models of Ollama upstreams (from config; no host is contacted)."""
    st = request.app[STATE]
    try:
        _auth_only(request)
    except Reject as exc:
        return error_response(exc.status, exc.message, exc.param, exc.code)
    names = sorted({u.model for u in st.cfg.upstreams.values() if u.engine == "ollama"})
    return web.json_response({"models": [{"name": n, "model": n, "details": {}}
                                         for n in names]})


def _keyless_refused(request: web.Request) -> web.Response | None:
    """A keyless endpoint asked from outside ``keyless_networks`` needs a client key."""
    st = request.app[STATE]
    nets = st.cfg.keyless_networks
    if nets is None or admin.peer_in(request.remote, tuple(nets)):
        return None
    try:
        authenticate(request, st)
    except Reject as exc:
        return error_response(exc.status, exc.message, exc.param, exc.code)
    return None


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return _keyless_refused(request) or web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: a policy is loaded and at least one upstream is healthy or degraded.

    Anyone gets ready / not ready; only the admin token also gets the upstream names
    (the inventory is not for every caller on the overlay).
    """
    if (refused := _keyless_refused(request)) is not None:
        return refused
    st = request.app[STATE]
    up = [n for n, u in st.upstreams.items() if u.state in (HEALTHY, DEGRADED) and not u.fails]
    body: dict[str, Any] = {"ready": bool(up)}
    if admin.is_admin(request):
        body["usable_upstreams"] = up
    return web.json_response(body, status=200 if up else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition."""
    if (refused := _keyless_refused(request)) is not None:
        return refused
    st = request.app[STATE]
    return web.Response(body=generate_latest(st.metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _not_found(request: web.Request) -> web.Response:
    return error_response(404, f"Unknown path {request.path}", None, "unknown_url")


def _guarded(handler: Handler) -> Handler:
    """``handler``, never crashing on bad input: an ``HTTPException`` of 400 or more is
    answered OpenAI-style with its status, anything else with a 500 (traceback logged).

    Every route is registered through this instead of an application middleware: with
    one, aiohttp puts two more coroutine layers and a cache look-up on every request.
    """
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, exc.reason or "error", None, None)
        except Exception:  # never crash on bad input: answer 500 and log
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(500, "Internal gateway error", None, "internal_error")
    guarded.__doc__, guarded.__name__ = handler.__doc__, getattr(handler, "__name__", "guarded")
    return guarded


def build_app(state: GatewayState) -> web.Application:
    """The aiohttp application for a gateway state."""
    app = web.Application(client_max_size=1 << 40)
    app[STATE] = state
    app[PROXY] = Proxy(state)
    r = app.router
    for path, native in _ENDPOINTS.items():
        r.add_post(path, _endpoint(app, path, native))
    for path, handler in (("/v1/models", models), ("/api/tags", ollama_tags),
                          ("/api/version", ollama_version), ("/api/ps", ollama_ps),
                          ("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics),
                          ("/status", statuspage.make_handler(STATE))):
        r.add_get(path, _guarded(handler))
    admin.register(app, STATE, _guarded)
    r.add_route("*", "/{tail:.*}", _guarded(_not_found))

    async def _startup(_app: web.Application) -> None:
        state.health.start(state.upstreams)
        if not state.policy.clients:
            log.warning("NO CLIENT KEYS CONFIGURED: only loopback callers are served, "
                        "unauthenticated%s", "" if state.cfg.allow_unauthenticated_loopback
                        else " (and allow_unauthenticated_loopback is off: nobody)")

    async def _cleanup(_app: web.Application) -> None:
        await cloud.close(state)
        await state.close()

    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


async def start(cfg: GatewayConfig, config_path: str | None = None,
                listen: list[str] | None = None) -> tuple[web.AppRunner, GatewayState,
                                                          list[tuple[str, int]]]:
    """Start serving; returns the runner, the state and the bound (host, port) pairs."""
    state = GatewayState(cfg, config_path)
    runner = GuardedRunner(build_app(state), lambda: state.cfg.limits,
                           state.metrics.connection_refused, handler_cancellation=True,
                           access_log=None)
    await runner.setup()
    bound: list[tuple[str, int]] = []
    for addr in listen or cfg.listen:
        host, _, port = addr.rpartition(":")
        site = web.TCPSite(runner, host.strip("[]"), int(port), backlog=1024)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        bound.append(sock.getsockname()[:2])
    return runner, state, bound
