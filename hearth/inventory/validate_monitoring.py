"""The monitoring section agrees with the hosts: a Linux host, ports free on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hearth.inventory.model import Inventory


def check_monitoring(inv: Inventory, defaults: dict[str, Any]) -> Iterator[tuple[str, str]]:
    mon = inv.monitoring
    if mon is None:
        return
    host = inv.hosts.get(mon.host)
    if host is None:
        yield "monitoring.host", f"no host named {mon.host}"
        return
    if host.os != "linux":
        yield "monitoring.host", f"{mon.host} is {host.os}: Prometheus and Alertmanager need a Linux host"
    taken = {int({**defaults, **inv.settings, **host.settings}.get("node_exporter_port", 9100)): "node exporter"}
    if inv.gateway is not None and inv.gateway.host == mon.host:
        taken[inv.gateway.port] = "the gateway"
    taken.update({s.listen_port: f"serve {s.name}" for s in host.serves})
    names: set[str] = set()
    for i, r in enumerate(mon.receivers):
        path = f"monitoring.receivers.{i}"
        if r.name in names:
            yield f"{path}.name", f"receiver {r.name} is named twice"
        names.add(r.name)
        if r.kind == "webhook" and (r.url is None or r.bot_token is not None or r.chat_id is not None):
            yield path, "a webhook receiver takes url (and optionally bearer), not bot_token/chat_id"
        if r.kind == "telegram" and (r.bot_token is None or r.chat_id is None or r.url or r.bearer):
            yield path, "a telegram receiver takes bot_token (a secret reference) and chat_id, not url/bearer"
    for key in ("prometheus_port", "alertmanager_port"):
        port = getattr(mon, key)
        if port in taken:
            yield f"monitoring.{key}", f"port {port} is already used on {mon.host} by {taken[port]}"
        taken[port] = key
