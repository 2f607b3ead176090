"""Checks for ``windows.reach: ssh_tunnel``: who the tunnel logs in as, and its ports.

The tunnels' local ends listen on the gateway host's loopback, so each must be
free there: not another tunnel's, not the gateway's (its API and admin API share
``gateway.port``), not the host's SSH, serves, CUDA recovery trigger or k3s ports.
The box's host key is checked at deploy time (it lives in the deployer's
known_hosts, which ``hearth hostkey accept`` writes): hearth.configs.tunnel.
"""

from __future__ import annotations

from collections.abc import Iterator

from hearth.inventory.model import Inventory


def check_tunnels(inv: Inventory) -> Iterator[tuple[str, str]]:
    from hearth.configs import tunnel

    boxes = tunnel.tunnel_hosts(inv)
    for name, host in inv.hosts.items():
        if host.windows and host.windows.tunnel_ports and name not in boxes:
            yield (f"hosts.{name}.windows.tunnel_ports", "only for reach: ssh_tunnel (this host is reached "
                   f"{'over the overlay' if host.windows.reach == 'overlay' else 'without a gateway'})")
    if not boxes:
        return
    taken = tunnel.gateway_ports(inv)
    for name in boxes:
        host = inv.hosts[name]
        path = f"hosts.{name}"
        if not host.ssh_user:
            yield (f"{path}.ssh_user", "reach ssh_tunnel: name the Windows account the gateway's tunnel logs "
                   "in as (the administrator the bootstrap installed the deploy key for)")
        if not host.serves:
            yield (f"{path}.windows.reach", "reach ssh_tunnel but the host serves nothing: no port to forward")
        serve_ports = {s.listen_port for s in host.serves}
        assert host.windows is not None
        for port in host.windows.tunnel_ports:
            if port not in serve_ports:
                yield (f"{path}.windows.tunnel_ports.{port}", f"{port} is not a port this host serves on "
                       f"({', '.join(map(str, sorted(serve_ports))) or 'none'})")
        for local, remote in tunnel.forwards(inv, name):
            where = (f"{path}.windows.tunnel_ports.{remote}" if remote in host.windows.tunnel_ports
                     else f"{path}.windows.reach")
            if local > 65535:
                yield (where, f"the tunnel's local port for serve port {remote} would be {local} (serve port + "
                       f"{tunnel.PORT_OFFSET}): set windows.tunnel_ports.{remote} to a free port")
                continue
            if local in taken:
                yield (where, f"the tunnel's local port {local} (to serve port {remote}) is taken on the gateway "
                       f"host {inv.gateway.host if inv.gateway else ''} by {taken[local]}: set "
                       f"windows.tunnel_ports.{remote} to a free port")
                continue
            taken[local] = f"the tunnel to hosts.{name} (serve port {remote})"
