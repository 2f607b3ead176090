"""Render the gateway policy from the one inventory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import GatewayConfig, parse_config

if TYPE_CHECKING:
    from hearth.inventory import Inventory

SECRETS_DIR = "/etc/hearth/gateway/secrets"
LOG_DIR = "/var/log/hearth/gateway"


def upstream_name(host: str, index: int, count: int) -> str:
    """An upstream is named after its host (``host-N`` if the host serves several)."""
    return host if count == 1 else f"{host}-{index}"


def admin_token_path(secrets_dir: str = SECRETS_DIR) -> str:
    """Where the role puts the admin token (mode 0600)."""
    return f"{secrets_dir}/admin-token"


def cloud_key_path(provider: str, secrets_dir: str = SECRETS_DIR) -> str:
    """Where the role puts a cloud provider's API key (mode 0600)."""
    return f"{secrets_dir}/cloud-{provider}"


def ollama_max_loaded(host: Any) -> int:
    """The host's OLLAMA_MAX_LOADED_MODELS as the deploy sets it (hearth.planner.ollama_server)."""
    from hearth.planner.ollama_server import max_loaded_models

    return max_loaded_models(host)


def gateway_config_from_inventory(
    inv: Inventory,
    resolve: Callable[[str], str] | None = None,
    secrets_dir: str = SECRETS_DIR,
    log_dir: str = LOG_DIR,
) -> GatewayConfig:
    """Build the gateway policy from an inventory.

    ``resolve`` turns a secret reference (``env:NAME`` / ``file:PATH``) into the
    secret; it is only used for client keys, which are stored as sha256 hashes.
    The admin token and cloud keys are referenced by file paths under
    ``secrets_dir`` that the deploy fills in.
    """
    if resolve is None:
        from hearth.inventory import resolve_secret as resolve
    routing = inv.routing
    upstreams: dict[str, dict[str, Any]] = {}
    route_ups: dict[str, list[str]] = {}
    from hearth.configs.tunnel import local_url, tunnel_hosts
    from hearth.configs.unmanaged import upstream_address

    tunneled = set(tunnel_hosts(inv))  # reach ssh_tunnel: the local end of the gateway host's tunnel
    from .placement import gpu_placement

    placed, gpus = gpu_placement(inv)  # who shares which card, as `hearth plan` places them
    for hname, host in inv.hosts.items():
        for i, s in enumerate(host.serves):
            name = upstream_name(hname, i, len(host.serves))
            url = (local_url(inv, hname, s.listen_port) if hname in tunneled
                   else f"http://{upstream_address(inv, hname)}:{s.listen_port}")  # overlay, or LAN if unmanaged
            upstreams[name] = {
                "engine": s.engine,
                "base_url": s.base_url or url,
                "model": s.name,
                "slots": s.slots,
                "vision": s.vision,
                "host": hname,
                "sleep": {
                    "sleeps": host.sleep.sleeps,
                    "mac": host.mac,
                    "ready_timeout_s": host.sleep.ready_timeout_s,
                    "keep_warm_minutes": max(1, host.sleep.keep_warm_minutes),
                    "max_waiters": host.sleep.max_held_requests,
                    "connect_s": host.sleep.connect_s,
                },
                "timeouts": {**host.timeouts.set_values(), **s.timeouts.set_values()},
            }
            if s.engine == "ollama":  # one Ollama server per host serves all its models
                upstreams[name].update(keep_alive=s.keep_alive, server=f"{hname}:ollama",
                                       max_loaded_models=ollama_max_loaded(host))
            if (hname, i) in placed:
                upstreams[name]["gpu"], upstreams[name]["gpu_gb"] = placed[(hname, i)]
            for r in s.routes:
                route_ups.setdefault(r, []).append(name)
    policies = routing.routes if routing else {}
    routes: dict[str, dict[str, Any]] = {}
    for r, ups in route_ups.items():
        pol = policies.get(r)
        routes[r] = {"upstreams": ups, **(pol.model_dump() if pol else {})}
    if routing is None:
        default = next(iter(route_ups), "")
        rt: dict[str, Any] = {"default_route": default}
    else:
        rt = {
            "alias_prefix": routing.alias_prefix,
            "default_route": routing.default_route,
            "tie_break": routing.tie_break,
            "buckets": {b: bc.model_dump() for b, bc in routing.buckets.items()},
        }
        if routing.size_promotion is not None:
            rt["size_promotion"] = routing.size_promotion.model_dump()
        if routing.image_route:
            rt["image_route"] = routing.image_route
        if routing.embedding_route:
            rt["embedding_route"] = routing.embedding_route
    if "image_route" not in rt:
        rt["image_route"] = next((r for r, ups in route_ups.items()
                                  if any(upstreams[u]["vision"] for u in ups)), None)
    listen = ["127.0.0.1:4000"]
    if inv.gateway is not None:
        gw = inv.hosts[inv.gateway.host]
        listen = [f"127.0.0.1:{inv.gateway.port}", f"{gw.overlay_ip}:{inv.gateway.port}"]
        if inv.gateway.lan.listen:  # opt-in; validation made sure clients need keys
            listen.append(f"{gw.address}:{inv.gateway.port}")
    clients = {
        n: {"key_sha256": hashlib.sha256(resolve(c.key).encode()).hexdigest(),
            "routes": c.routes, "rate_per_minute": c.rate_per_minute,
            "cloud": c.cloud.model_dump(), "budget": c.budget.model_dump()}
        for n, c in inv.clients.items()
    }
    clouds = {p: {"base_url": c.base_url, "api_key_file": cloud_key_path(p, secrets_dir),
                  "models": {a: m.model_dump() for a, m in c.models.items()}}
              for p, c in inv.clouds.items()}
    data: dict[str, Any] = {
        "listen": listen,
        "admin_token_file": admin_token_path(secrets_dir),
        "wol": {"address": str(inv.lan.cidr.broadcast_address), "port": 9},
        "upstreams": upstreams,
        "routes": routes,
        "routing": rt,
        "clouds": clouds,
        "clients": clients,
        "logs": {"decision_log": f"{log_dir}/decisions.jsonl",
                 "cloud_audit_log": f"{log_dir}/cloud-audit.jsonl"},
        "sanitise": {"hostnames": sorted(inv.hosts)},
        "model_aliases": dict(inv.model_aliases),
        "gpus": gpus,
    }
    if inv.gateway is not None:
        # the admin API answers only loopback and the overlay, whatever else listens
        data["admin_networks"] = ["127.0.0.0/8", "::1/128", str(inv.overlay.cidr)]
        if inv.gateway.lan.listen:  # a LAN peer needs a client key on every request
            data["keyless_networks"] = data["admin_networks"]
        defaults = inv.gateway.timeouts.set_values()
        defaults.pop("probe_s", None)
        if "probe_s" in inv.gateway.timeouts.set_values():
            data["health"] = {"timeout_s": inv.gateway.timeouts.probe_s}
        if defaults:
            data["timeouts"] = defaults
    return parse_config(data, f"inventory {inv.name}")
