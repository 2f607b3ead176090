"""Admin API (bearer token read from a file): upstreams, drain, reload, keep-warm, CUDA recovery."""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import recover
from .body import Reject, parse_json, read_body
from .cards import gpus_snapshot, holds_memory, shares_gpu_with
from .cloudstate import runtime
from .config import ConfigError
from .errors import error_response
from .state import GatewayState

_KEY: Any = None
_ADMIN_BODY_BYTES = 64 * 1024


def is_admin(request: web.Request) -> bool:
    """Whether the request carries the admin token (False when the admin API is off)."""
    return _check(request) is None


@functools.lru_cache(maxsize=256)
def peer_in(remote: str | None, nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """True when the peer address ``remote`` is in one of ``nets`` (the admin API, the
    keyless endpoints and the status page all ask this)."""
    try:
        addr = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


def _check(request: web.Request) -> web.Response | None:
    st: GatewayState = request.app[_KEY]
    nets = st.cfg.admin_networks
    if nets is not None and not peer_in(request.remote, tuple(nets)):
        return error_response(403, "The admin API is not reachable from this network",
                              None, "admin_network_refused")
    token = st.policy.admin_token
    if not token:
        return error_response(403, "The admin API is disabled: no admin token file is "
                                   "configured or it is empty", None, "admin_disabled")
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return error_response(401, "Admin API: bad or missing bearer token", None,
                              "invalid_admin_token")
    return None


def _admin(fn: Any) -> Any:
    async def wrapped(request: web.Request) -> web.Response:
        bad = _check(request)
        if bad is not None:
            return bad
        return await fn(request, request.app[_KEY])
    wrapped.__doc__ = fn.__doc__
    return wrapped


@_admin
async def upstreams(request: web.Request, st: GatewayState) -> web.Response:
    """GET /admin/upstreams: per-upstream state, in-flight, cap, last error; routes."""
    cfg = st.cfg
    drained_ups = {u for r in st.drained for u in cfg.routes[r].upstreams}
    served = {u for r in cfg.routes if r not in st.drained for u in cfg.routes[r].upstreams}
    ups = [u.snapshot(u.name in drained_ups and u.name not in served)
           for u in st.upstreams.values()]
    for row in ups:  # last wake, failed wakes in a row, cold starts (wakes.py)
        up = st.upstreams[str(row["name"])]
        row["wake"] = st.metrics.wake.snapshot(up)
        row["shares_gpu_with"] = shares_gpu_with(up, st.upstreams)  # any engine (cards.py)
        row["holds_gpu"] = holds_memory(up)
    routes = {r: {"upstreams": rc.upstreams, "on_busy": rc.on_busy, "spill": rc.spill,
                  "failover": st.policy.chains[r], "terminal": rc.terminal, "wake": rc.wake,
                  "drained": r in st.drained} for r, rc in cfg.routes.items()}
    for r, rc in cfg.routes.items():
        routes[r]["cloud_fallback"] = rc.cloud_fallback
    return web.json_response({"upstreams": ups, "routes": routes,
                              "clouds": runtime(st).snapshot(),
                              "gpus": gpus_snapshot(cfg, st.upstreams)})


def _route(request: web.Request, st: GatewayState) -> str | web.Response:
    r = request.match_info["route"]
    if r not in st.cfg.routes:
        return error_response(404, f"Unknown route '{r}'", "route", "route_not_found")
    return r


def _set_drained(request: web.Request, st: GatewayState, drained: bool) -> web.Response:
    r = _route(request, st)
    if isinstance(r, web.Response):
        return r
    if drained:
        st.drained.add(r)
    else:
        st.drained.discard(r)
    return web.json_response({"route": r, "drained": drained})


@_admin
async def drain(request: web.Request, st: GatewayState) -> web.Response:
    """POST /admin/drain/<route>: auto-routed traffic avoids it; explicit pins still pass."""
    return _set_drained(request, st, True)


@_admin
async def undrain(request: web.Request, st: GatewayState) -> web.Response:
    """POST /admin/undrain/<route>."""
    return _set_drained(request, st, False)


@_admin
async def reload(request: web.Request, st: GatewayState) -> web.Response:
    """POST /admin/reload: re-read the policy file; a bad one is rejected, the old one kept."""
    try:
        result = await st.reload()
    except ConfigError as exc:
        body = {"error": {"message": f"policy rejected, previous policy still in force: {exc}",
                          "type": "invalid_request_error", "param": None,
                          "code": "invalid_policy", "errors": exc.errors}}
        return web.json_response(body, status=400)
    return web.json_response(result)


@_admin
async def keep_warm(request: web.Request, st: GatewayState) -> web.Response:
    """POST /admin/keep-warm/<upstream> (JSON ``{"minutes": N}`` or ``?minutes=N``)."""
    name = request.match_info["upstream"]
    up = st.upstreams.get(name)
    if up is None:
        return error_response(404, f"Unknown upstream '{name}'", "upstream",
                              "upstream_not_found")
    minutes: Any = request.query.get("minutes")
    try:
        raw = await read_body(request, _ADMIN_BODY_BYTES, st.cfg.limits.body_timeout_s)
        if raw:
            minutes = parse_json(raw).get("minutes", minutes)
    except Reject as exc:  # not JSON, not an object, too deep, too big, too slow, encoded
        return error_response(exc.status, exc.message, exc.param, exc.code)
    try:
        m = float(minutes) if minutes is not None else up.cfg.sleep.keep_warm_minutes
    except (TypeError, ValueError):
        return error_response(400, "'minutes' must be a number", "minutes")
    if not 0 < m <= 24 * 60:
        return error_response(400, "'minutes' must be in (0, 1440]", "minutes")
    return web.json_response(await st.health.keep_warm(up, m))


@_admin
async def end_keep_warm(request: web.Request, st: GatewayState) -> web.Response:
    """DELETE /admin/keep-warm/<upstream>: end its keep-warm window now (a loaded Ollama
    model goes back to its own keep-alive at once; nothing is woken or loaded for it)."""
    name = request.match_info["upstream"]
    up = st.upstreams.get(name)
    if up is None:
        return error_response(404, f"Unknown upstream '{name}'", "upstream", "upstream_not_found")
    return web.json_response(await st.health.end_keep_warm(up))


@_admin
async def wake(request: web.Request, st: GatewayState) -> web.Response:
    """POST /admin/wake/<upstream>: wake a sleeping upstream's host (one magic packet) and wait for it."""
    name = request.match_info["upstream"]
    up = st.upstreams.get(name)
    if up is None:
        return error_response(404, f"Unknown upstream '{name}'", "upstream", "upstream_not_found")
    if not up.sleeps:
        return error_response(400, f"upstream '{name}' does not sleep", "upstream")
    ok = await st.health.ensure_awake(up)
    return web.json_response({"upstream": name, "awake": bool(ok), "state": up.state})


@_admin
async def recover_cuda(request: web.Request, st: GatewayState) -> web.Response:
    """POST /admin/recover-cuda/<host>: start hearth-recover-cuda on a GPU host (never a terminal route's)."""
    name = request.match_info["host"]
    outcome = await recover.recover_host(st.cfg, st.policy.admin_token or "", name)
    return web.json_response(outcome.body, status=outcome.status)


def register(app: web.Application, key: Any, wrap: Callable[[Any], Any] = lambda h: h) -> None:
    """Add the admin routes to ``app`` (state under ``key``), each handler through ``wrap``."""
    global _KEY
    _KEY = key
    r = app.router
    r.add_get("/admin/upstreams", wrap(upstreams))
    r.add_post("/admin/drain/{route}", wrap(drain))
    r.add_post("/admin/undrain/{route}", wrap(undrain))
    r.add_post("/admin/reload", wrap(reload))
    r.add_post("/admin/keep-warm/{upstream}", wrap(keep_warm))
    r.add_delete("/admin/keep-warm/{upstream}", wrap(end_keep_warm))
    r.add_post("/admin/wake/{upstream}", wrap(wake))
    r.add_post("/admin/recover-cuda/{host}", wrap(recover_cuda))
