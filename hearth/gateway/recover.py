"""CUDA recovery on a GPU host, triggered by the operator through the admin API.

Seed 002: after an eGPU link drop, `nvidia-smi` answers but every fresh CUDA init
fails; reloading `nvidia_uvm` and restarting the host's GPU services brings it
back. hearth installs `hearth-recover-cuda.service` on GPU hosts and a socket on
the host's overlay address that starts it when given the host's trigger token:
``HMAC-SHA256(admin token, "hearth-recover-cuda:<host>")``. The GPU host holds only
that derived token, never the admin token. Hosts that serve a terminal route get
no trigger and the gateway refuses them: the senior model is the operator's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import GatewayConfig

PORT = 4101  # the trigger socket on each GPU host's overlay address
CONTEXT = "hearth-recover-cuda:"
GPU_ENGINES = ("vllm", "ollama")
log = logging.getLogger("hearth.gateway.recover")


def trigger_token(admin_token: str, host: str) -> str:
    """The token a GPU host accepts (derived: the host never sees the admin token).

    Example:
        trigger_token("s3cret", "lab-vllm")  # 64 hex characters
    """
    return hmac.new(admin_token.encode(), (CONTEXT + host).encode(), hashlib.sha256).hexdigest()


async def trigger(address: str, token: str, port: int = PORT, timeout: float = 10.0) -> str:
    """Send the token to a host's trigger socket; its one-line answer ("accepted"...)."""
    async def exchange() -> str:
        reader, writer = await asyncio.open_connection(address, port)
        try:
            writer.write(token.encode() + b"\n")
            await writer.drain()
            return (await reader.readline()).decode(errors="replace").strip()
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), timeout)


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]


def _log(cfg: GatewayConfig, event: dict[str, Any]) -> None:
    """Every recovery request goes to the journal and, beside the decision log, recovery-events.jsonl."""
    log.warning("recover-cuda %s", json.dumps(event, sort_keys=True))
    if cfg.logs.decision_log:
        path = Path(cfg.logs.decision_log).with_name("recovery-events.jsonl")
        try:
            with path.open("a") as handle:
                handle.write(json.dumps(event, sort_keys=True) + "\n")
        except OSError as exc:
            log.error("cannot write %s: %s", path, exc)


def _refusal(cfg: GatewayConfig, host: str) -> Outcome | None:
    ups = [u for u in cfg.upstreams.values() if u.host == host]
    if not ups:
        return Outcome(404, _error(f"No upstream runs on host '{host}'", "host_not_found"))
    if not any(u.engine in GPU_ENGINES for u in ups):
        return Outcome(409, _error(f"Host '{host}' runs no GPU service hearth manages (vLLM, Ollama)",
                                   "not_recoverable"))
    names = {n for n, u in cfg.upstreams.items() if u.host == host}
    terminal = sorted(r for r, rc in cfg.routes.items() if rc.terminal and names & set(rc.upstreams))
    if terminal:
        return Outcome(409, _error(
            f"Host '{host}' serves the terminal route(s) {', '.join(terminal)}: hearth never recovers it; "
            "page the operator", "terminal_route_host"))
    return None


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": "host", "code": code}}


async def recover_host(cfg: GatewayConfig, admin_token: str, host: str, port: int = PORT) -> Outcome:
    """Ask ``host``'s trigger to start its CUDA recovery; refuse terminal-route hosts."""
    refused = _refusal(cfg, host)
    event: dict[str, Any] = {"ts": time.time(), "host": host}
    if refused is not None:
        _log(cfg, {**event, "result": "refused", "reason": refused.body["error"]["code"]})
        return refused
    up = next(u for u in cfg.upstreams.values() if u.host == host and u.engine in GPU_ENGINES)
    address = urlsplit(up.base_url).hostname or ""
    try:
        answer = await trigger(address, trigger_token(admin_token, host), port)
    except (OSError, TimeoutError) as exc:
        _log(cfg, {**event, "address": address, "result": "unreachable", "error": str(exc)})
        return Outcome(502, _error(f"Cannot reach the recovery trigger of '{host}' at {address}:{port}: "
                                   f"{exc or type(exc).__name__}", "trigger_unreachable"))
    _log(cfg, {**event, "address": address, "result": answer})
    if answer not in ("accepted", "already running"):
        return Outcome(502, _error(f"The recovery trigger of '{host}' answered {answer!r}", "trigger_refused"))
    return Outcome(202, {"host": host, "address": address, "recovery": answer,
                         "unit": "hearth-recover-cuda.service"})
