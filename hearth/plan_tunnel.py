"""The plan's "Windows reach" section: how the gateway reaches each Windows box."""

from __future__ import annotations

from collections.abc import Iterator

from hearth.inventory.model import Inventory


def windows_reach_lines(inv: Inventory) -> Iterator[str]:
    """Per Windows host: over the overlay, or the SSH tunnel from the gateway host
    (unit, login, forwarded ports, whether its host key is recorded)."""
    from hearth.configs import tunnel
    from hearth.hostkey import known_hosts_path
    from hearth.plan import table

    boxes = [(name, host) for name, host in inv.hosts.items() if host.os == "windows"]
    if not boxes:
        return
    tunneled = set(tunnel.tunnel_hosts(inv))
    rows = []
    for name, host in boxes:
        if name not in tunneled:
            reach = host.windows.reach if host.windows else "overlay"
            rows.append([name, reach, f"{host.overlay_ip} (WireGuard)" if reach == "overlay" else "-", "-", "-"])
            continue
        assert inv.gateway is not None
        ports = ", ".join(f"127.0.0.1:{local} -> {remote}" for local, remote in tunnel.forwards(inv, name))
        keys = tunnel.recorded_keys(inv, name)
        recorded = (", ".join(key_type for key_type, _ in keys) if keys
                    else f"NOT recorded in {known_hosts_path(inv)}: hearth hostkey accept")
        rows.append([name, "ssh_tunnel",
                     f"{inv.gateway.host} {tunnel.unit_name(name)} as {tunnel.ssh_user(inv, name)}@{host.address}:"
                     f"{tunnel.ssh_port(inv, name)}", ports, recorded])
    yield "Windows reach"
    yield from table(["host", "reach", "how", "gateway-local ports -> box", "host key"], rows)
