"""The monitoring section agrees with the hosts: a Linux host, ports free on it; the Home
Assistant broker's credentials come as a pair, the password file is private."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
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
    if mon.notify.repeat_interval_s < mon.notify.group_interval_s:
        yield "monitoring.notify.repeat_interval_s", (
            f"{mon.notify.repeat_interval_s} is shorter than group_interval_s ({mon.notify.group_interval_s}): "
            "Alertmanager repeats a notice only when a group's interval comes round")
    yield from check_home_assistant(inv)


def check_home_assistant(inv: Inventory) -> Iterator[tuple[str, str]]:
    ha = inv.monitoring.home_assistant if inv.monitoring else None
    if ha is None:
        return
    path = "monitoring.home_assistant"
    if (ha.user is None) != (ha.password is None):
        yield path, "user and password go together (the broker's login; password is a secret reference)"
    if ha.ca_file is not None and not ha.tls:
        yield f"{path}.ca_file", "a CA file is for TLS: set tls: true or drop ca_file"
    if ha.ca_file is not None and not Path(ha.ca_file).expanduser().is_file():
        yield f"{path}.ca_file", f"no file {ha.ca_file} on this machine"
    if ha.password and ha.password.startswith("file:"):
        where = Path(ha.password.removeprefix("file:")).expanduser()
        try:
            mode = stat.S_IMODE(os.stat(where).st_mode)
        except OSError:
            mode = 0  # a missing file is the deploy's error (resolve_secret names it)
        if mode & 0o077:
            yield f"{path}.password", f"{where} is readable by others (mode {mode:04o}): chmod 600 {where}"
