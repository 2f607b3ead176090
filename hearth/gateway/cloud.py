"""Cloud escalation: explicit only, sanitised first, every call audit-logged."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import time
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from .config import ClientCfg
from .errors import error_response, sse_error_event
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


def _usage(obj: Any) -> dict[str, Any] | None:
    u = obj.get("usage") if isinstance(obj, dict) else None
    return u if isinstance(u, dict) else None


async def handle(request: web.Request, st: GatewayState, ctx: Any, client: ClientCfg | None,
                 payload: dict[str, Any], path: str) -> web.StreamResponse:
    """Serve ``cloud/<provider>/<alias>`` if, and only if, escalation is explicit and allowed."""
    model = payload["model"]
    parts = model.split("/", 2)
    cfg = st.cfg
    ctx.bucket, ctx.reason = "cloud", "cloud_escalation"
    prov = cfg.clouds.get(parts[1]) if len(parts) == 3 else None
    if prov is None or parts[2] not in prov.models:
        ctx.status = 404
        return error_response(404, f"The model '{model}' does not exist", "model",
                              "model_not_found", ctx.headers())
    if request.headers.get(ESCALATE_HEADER, "").strip().lower() != "cloud":
        ctx.status = 403
        return error_response(403, f"Cloud models are reachable only with the header "
                                   f"'{ESCALATE_HEADER}: cloud'", ESCALATE_HEADER,
                              "escalation_required", ctx.headers())
    if client is None or not client.cloud:
        ctx.status = 403
        return error_response(403, "This API key may not escalate to cloud models "
                                   "(needs cloud: true)", None, "cloud_not_allowed",
                              ctx.headers())
    key = st.policy.cloud_keys.get(parts[1])
    if not key:
        ctx.status = 503
        return error_response(503, f"Cloud provider '{parts[1]}' has no API key configured",
                              None, "cloud_unconfigured", ctx.headers())
    clean, redacted = Sanitiser(cfg.sanitise.hostnames).payload(payload)
    clean["model"] = prov.models[parts[2]]
    meta = clean.get("metadata")
    if isinstance(meta, dict):
        clean.pop("metadata")
    data = json.dumps(clean, separators=(",", ":")).encode()
    ctx.route, ctx.upstream = f"cloud/{parts[1]}", model
    audit: dict[str, Any] = {
        "ts": time.time(), "request_id": ctx.request_id, "client": ctx.client,
        "provider": parts[1], "model": parts[2], "provider_model": clean["model"],
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
            if not stream or resp.status != 200:
                raw = await resp.read()
                with contextlib.suppress(ValueError):
                    audit["usage"] = _usage(json.loads(raw))
                return web.Response(status=resp.status, body=raw, headers=h)
            out = web.StreamResponse(status=200, headers=h)
            await out.prepare(request)
            try:
                async for chunk in resp.content.iter_any():
                    if b'"usage"' in chunk:
                        for line in chunk.split(b"\n"):
                            if line.startswith(b"data: {") and b'"usage"' in line:
                                with contextlib.suppress(ValueError):
                                    audit["usage"] = _usage(json.loads(line[6:])) or \
                                        audit["usage"]
                    await out.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as exc:
                ctx.status = audit["status"] = 502
                await out.write(sse_error_event(f"cloud provider failed mid-stream: "
                                                f"{type(exc).__name__}"))
            return out
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        ctx.status = audit["status"] = 504 if isinstance(exc, TimeoutError) else 502
        return error_response(ctx.status, f"cloud provider '{parts[1]}' failed: "
                              f"{type(exc).__name__}", None, "upstream_error", ctx.headers())
    finally:
        st.metrics.cloud.labels(parts[1], parts[2], str(audit["status"])).inc()
        st.audit.write(audit)
