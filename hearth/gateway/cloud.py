"""Cloud models: by name, by escalation or as a route's fallback, as each client's
``cloud`` section allows (:mod:`.cloudpolicy`); limited per alias by the gateway
itself (:mod:`.cloudstate`), sanitised first, every call audit-logged and counted."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import time
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from . import cloudpolicy, spend
from .cloudstate import runtime
from .config import ClientCfg, CloudModelCfg, GatewayConfig
from .errors import error_body, error_response, sse_error_event
from .state import GatewayState

ESCALATE_HEADER = "X-Hearth-Escalate"
_SESSION_KEY = "_cloud_session"

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.S)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")
_TOKENS = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_-]{30,})")
_MAC = re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}(?![0-9A-Fa-f:-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?i)(?<![0-9a-f:])(?:f[cd][0-9a-f]{2}|fe80):[0-9a-f:]*[0-9a-f](?![0-9a-f:])")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _private_v4(m: re.Match[str]) -> bool:
    try:
        ip = ipaddress.ip_address(m.group(0))
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip in _CGNAT


class Sanitiser:
    """Replaces private addresses, inventory host names and MACs; removes secrets."""

    def __init__(self, hostnames: list[str]) -> None:
        names = sorted({h for h in hostnames if h}, key=len, reverse=True)
        self.hosts = (re.compile(r"(?<![\w.-])(?:" + "|".join(re.escape(h) for h in names)
                                 + r")(?![\w-])", re.I) if names else None)

    def text(self, s: str, counts: Counter[str]) -> str:
        """Sanitise one string, counting replacements by kind."""
        s, n = _PEM.subn("[REDACTED_PEM]", s)
        counts["pem"] += n
        s, n = _BEARER.subn("Bearer [REDACTED_TOKEN]", s)
        counts["bearer"] += n
        s, n = _TOKENS.subn("[REDACTED_KEY]", s)
        counts["api_key"] += n
        s, n = _MAC.subn("[MAC]", s)
        counts["mac"] += n
        hits = 0

        def ip4(m: re.Match[str]) -> str:
            nonlocal hits
            if _private_v4(m):
                hits += 1
                return "[PRIVATE_IP]"
            return m.group(0)

        s = _IPV4.sub(ip4, s)
        s, n = _IPV6.subn("[PRIVATE_IP]", s)
        counts["private_ip"] += hits + n
        if self.hosts is not None:
            s, n = self.hosts.subn("[HOST]", s)
            counts["hostname"] += n
        return s

    def payload(self, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        """Sanitise every text field of a request body; (new body, counts by kind)."""
        counts: Counter[str] = Counter()

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                return self.text(v, counts)
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, dict):
                return {k: (x if k in ("image_url", "role", "type") else walk(x))
                        for k, x in v.items()}
            return v

        out = dict(payload)
        for key in ("messages", "prompt", "input", "system", "tools"):
            if key in out:
                out[key] = walk(out[key])
        return out, {k: v for k, v in counts.items() if v}


def _session(st: GatewayState) -> aiohttp.ClientSession:
    sess = getattr(st, _SESSION_KEY, None)
    if sess is None or sess.closed:
        t = st.cfg.timeouts
        sess = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=t.connect_s), skip_auto_headers=("User-Agent",))
        setattr(st, _SESSION_KEY, sess)
    return sess


async def close(st: GatewayState) -> None:
    """Close the cloud HTTP session."""
    sess = getattr(st, _SESSION_KEY, None)
    if sess is not None:
        await sess.close()


CHECK_COMMAND = "hearth cloud check INVENTORY --write"
_FALLBACK_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})


def _refuse(ctx: Any, status: int, message: str, code: str, param: str | None = None,
            retry_after: float | None = None) -> web.Response:
    ctx.status, ctx.error = status, message
    return error_response(status, message, param, code, ctx.headers(), retry_after)


async def handle(request: web.Request, st: GatewayState, ctx: Any, client: ClientCfg | None,
                 payload: dict[str, Any], path: str) -> web.StreamResponse:
    """Serve ``cloud/<provider>/<alias>`` asked by name, as the client's cloud mode allows."""
    model = payload["model"]
    parts = model.split("/", 2)
    cfg = st.cfg
    ctx.bucket = "cloud"
    escalate = request.headers.get(ESCALATE_HEADER, "").strip().lower() == "cloud"
    ctx.reason = "cloud_escalation" if escalate else "cloud_by_name"
    prov = cfg.clouds.get(parts[1]) if len(parts) == 3 else None
    if prov is None or parts[2] not in prov.models:
        return _refuse(ctx, 404, f"The model '{model}' does not exist", "model_not_found",
                       "model")
    ref = f"{parts[1]}/{parts[2]}"
    name = ctx.client or "-"
    why = cloudpolicy.denial(cfg, name, client, ref, "escalation" if escalate else "by_name")
    if why is not None:
        mode = client.cloud.mode if client is not None else "none"
        code = ("escalation_required" if not escalate and mode == "escalation"
                else "cloud_not_allowed" if mode == "none" else "cloud_alias_not_allowed")
        return _refuse(ctx, 403, f"Client '{name}' may not use {model}"
                       f"{' by escalation' if escalate else ' by name'}: {why}", code, "model")
    return await call(request, st, ctx, ref, payload, path, via=ctx.reason)


def _fallback_blocker(st: GatewayState, ctx: Any, d: Any, path: str, ref: str
                      ) -> str | None:
    cfg = st.cfg
    rc = cfg.routes[d.route]
    if rc.terminal:
        return "route_terminal"
    if rc.private or (ctx.route in cfg.routes and cfg.routes[ctx.route].private):
        return "route_private"
    if path not in _FALLBACK_PATHS:
        return "endpoint"
    if d.upstreams:
        return "concrete_model_pinned"
    name = ctx.client or "-"
    client = cfg.clients.get(name)
    if cloudpolicy.denial(cfg, name, client, ref, "fallback") is not None:
        return "client_not_allowed"
    m = cloudpolicy.alias(cfg, ref)
    if m is None:
        return "alias_absent"
    if d.has_image and not m.vision:
        return "image_alias_blind"
    if runtime(st).alias(ref).unavailable:
        return "alias_unavailable"
    if not st.policy.cloud_keys.get(ref.partition("/")[0]):
        return "no_provider_key"
    return None


async def fallback(request: web.Request, st: GatewayState, ctx: Any, d: Any,
                   payload: dict[str, Any], path: str, why: str
                   ) -> web.StreamResponse | None:
    """The route's cloud fallback when every local upstream failed; None when the route
    has none or this request may not use it (the caller answers its local error)."""
    ref = st.cfg.routes[d.route].cloud_fallback
    if ref is None:
        return None
    blocked = _fallback_blocker(st, ctx, d, path, ref)
    if blocked is not None:
        ctx.fallback.append(f"no_cloud_fallback:{blocked}")
        return None
    p, _, a = ref.partition("/")
    rt = runtime(st)
    state = rt.alias(ref)
    state.configure(st.cfg.clouds[p].models[a])
    wait, window = state.take(time.monotonic())
    if wait:
        rt.limited.labels(p, a, window).inc()
        ctx.fallback.append(f"no_cloud_fallback:rate_limited_{window}")
        return None
    ctx.fallback.append(f"cloud_fallback:{why}")
    rt.fallbacks.labels(d.route, ref, why).inc()
    return await call(request, st, ctx, ref, payload, path, via="cloud_fallback",
                      reserved=True)


def _retired(ctx: Any, ref: str, provider_model: str) -> bytes:
    return error_body(404, f"The cloud model 'cloud/{ref}' (provider model "
                           f"'{provider_model}') is no longer served by its provider "
                           f"(HTTP 404): run '{CHECK_COMMAND}' and deploy",
                      "model", "cloud_model_retired")


async def call(request: web.Request, st: GatewayState, ctx: Any, ref: str,
               payload: dict[str, Any], path: str, via: str,
               reserved: bool = False) -> web.StreamResponse:
    """Send one (allowed) request to a cloud alias: limit, sanitise, audit, count."""
    cfg: GatewayConfig = st.cfg
    p, _, a = ref.partition("/")
    prov = cfg.clouds[p]
    m: CloudModelCfg = prov.models[a]
    rt = runtime(st)
    key = st.policy.cloud_keys.get(p)
    if not key:  # before the limit: a call that cannot be made spends none of it
        return _refuse(ctx, 503, f"Cloud provider '{p}' has no API key configured",
                       "cloud_unconfigured")
    if not reserved:
        state = rt.alias(ref)
        state.configure(m)
        wait, window = state.take(time.monotonic())
        if wait:
            rt.limited.labels(p, a, window).inc()
            lim = m.per_minute if window == "minute" else m.per_day
            return _refuse(ctx, 429, f"cloud/{ref} allows {lim} calls per {window} (the "
                           f"provider's limit, counted by the gateway across clients); "
                           f"retry in {wait:.0f}s", "cloud_rate_limited", None, wait)
    clean, redacted = Sanitiser(cfg.sanitise.hostnames).payload(payload)
    clean["model"] = m.id
    if isinstance(clean.get("metadata"), dict):
        clean.pop("metadata")
    data = json.dumps(clean, separators=(",", ":")).encode()
    ctx.route, ctx.upstream = f"cloud/{p}", f"cloud/{ref}"
    label_route = ctx.route
    audit: dict[str, Any] = {
        "ts": time.time(), "request_id": ctx.request_id, "client": ctx.client,
        "provider": p, "model": a, "provider_model": m.id, "via": via,
        "prompt_sha256": hashlib.sha256(data).hexdigest(), "redacted": redacted,
        "endpoint": path, "status": None, "usage": None,
    }
    stream = clean.get("stream") is True
    url = prov.base_url.rstrip("/") + path.removeprefix("/v1")
    t = cfg.timeouts
    try:
        async with _session(st).post(url, data=data, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {key}"},
                timeout=aiohttp.ClientTimeout(total=t.total_s, sock_connect=t.connect_s,
                                              sock_read=t.idle_s if stream else None)) as resp:
            ctx.status = audit["status"] = resp.status
            h = {**ctx.headers(), "Content-Type": resp.headers.get("Content-Type",
                                                                   "application/json")}
            if resp.status == 404:
                await resp.read()
                rt.mark_unavailable(ref, f"provider answered 404 for {m.id}")
                ctx.error = f"cloud/{ref} retired by the provider"
                h["Content-Type"] = "application/json"
                return web.Response(status=404, body=_retired(ctx, ref, m.id), headers=h)
            if resp.status == 429 and "Retry-After" in resp.headers:
                h["Retry-After"] = resp.headers["Retry-After"]
            if not stream or resp.status != 200:
                raw = await resp.read()
                if resp.status == 200:
                    rt.mark_available(ref)
                    audit["usage"] = spend.usage_in_json(raw)
                    ctx.route = label_route
                    spend.account_json(st, ctx, f"cloud/{ref}", raw, m)
                return web.Response(status=resp.status, body=raw, headers=h)
            rt.mark_available(ref)
            out = web.StreamResponse(status=200, headers=h)
            await out.prepare(request)
            events, tail = 0, b""
            try:
                async for chunk in resp.content.iter_any():
                    events += chunk.count(b"data:")
                    tail = tail[-4096:] + chunk
                    await out.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as exc:
                ctx.status = audit["status"] = 502
                await out.write(sse_error_event(f"cloud provider failed mid-stream: "
                                                f"{type(exc).__name__}"))
            audit["usage"] = spend.usage_in_stream_tail(tail)
            spend.account(st, ctx, f"cloud/{ref}", audit["usage"],
                          max(0, events - (b"[DONE]" in tail)), m)
            return out
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        ctx.status = audit["status"] = 504 if isinstance(exc, TimeoutError) else 502
        return _refuse(ctx, ctx.status, f"cloud provider '{p}' failed: {type(exc).__name__}",
                       "upstream_error")
    finally:
        st.metrics.cloud.labels(p, a, str(audit["status"])).inc()
        st.audit.write(audit)
