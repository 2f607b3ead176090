"""The gateway host's output chain: what the gateway itself may reach on the LAN and the overlay.

hearth's firewall filters what comes in; what goes out is open, because the host
itself needs much (apt and its proxy, DNS, NTP, WireGuard to its peers' LAN
endpoints, k3s, alert receivers such as Home Assistant on the LAN, ``reach:
ssh_tunnel``'s SSH to a Windows box). A default-deny output policy on the whole host
would break those. The gateway is the one process there that acts on what clients
send, so its own connections -- matched by its user, ``hearth-gateway`` -- are
limited: on the LAN and on the overlay it reaches exactly each upstream's address
and port over the way the inventory says (a ``managed: false`` host's LAN address
with ``reach: lan``, else the overlay), each CUDA recovery trigger, and the LAN
broadcast for Wake-on-LAN; DNS goes anywhere (a cloud provider's name), and so does
everything off the LAN and the overlay (cloud providers). Anything else of the
gateway's toward the LAN or the overlay is rejected with ICMP admin-prohibited: its
connect() fails at once with EHOSTUNREACH (a plain drop would leave it waiting for
its connect timeout: TCP retransmits a SYN the output hook dropped).

Example:
    [(e.address, e.port) for e in egress(inv, "k3master")]  # [("192.168.1.77", 8080), ...]
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hearth.inventory import Inventory
from hearth.inventory.validate_unmanaged import ip_literal

DNS = 53


@dataclass(frozen=True)
class Egress:
    """The gateway may open ``proto`` connections to ``address``:``port``."""

    proto: str
    address: str
    port: int
    why: str

    @property
    def ip(self) -> str:
        return "ip6" if ipaddress.ip_address(self.address).version == 6 else "ip"


def egress(inv: Inventory, name: str) -> list[Egress]:
    """Every destination on the LAN or the overlay the gateway on ``name`` connects to."""
    if inv.gateway is None or inv.gateway.host != name:
        return []
    from hearth.configs import recover_cuda
    from hearth.configs.unmanaged import reach
    from hearth.gateway.from_inventory import gateway_config_from_inventory
    from hearth.gateway.recover import PORT

    serial = itertools.count()  # the policy's upstreams only; secrets are never read here
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"unread-{next(serial)}")
    out: list[Egress] = []
    for up_name, up in config.upstreams.items():
        url = urlsplit(up.base_url)
        host = url.hostname or ""
        if not ip_literal(host) or ipaddress.ip_address(host).is_loopback:
            continue  # loopback (an SSH tunnel's local end) is always open; names: validate_unmanaged
        port = url.port or (443 if url.scheme == "https" else 80)
        way = "LAN" if up.host in inv.hosts and reach(inv, up.host) == "lan" else "overlay"
        managed = "" if up.host not in inv.hosts or inv.hosts[up.host].managed else ", managed: false"
        out.append(Egress("tcp", host, port, f"upstream {up_name} ({way}{managed})"))
    for hname, host_ in inv.hosts.items():
        if recover_cuda.triggerable(inv, hname) and host_.overlay_ip is not None:
            out.append(Egress("tcp", str(host_.overlay_ip), PORT, f"CUDA recovery trigger of {hname}"))
    if config.wol is not None and any(h.sleep.sleeps for h in inv.hosts.values()):
        out.append(Egress("udp", config.wol.address, config.wol.port, "Wake-on-LAN magic packets"))
    return list({(e.proto, e.address, e.port): e for e in out}.values())


def chain(inv: Inventory, name: str, lan_ipv6: Sequence[str] = ()) -> dict[str, Any] | None:
    """The template's output chain on the gateway host (None elsewhere): the gateway's
    user, its allowed destinations, and the networks closed to it otherwise.

    ``lan_ipv6``: the global IPv6 prefixes the host has on its LAN interface (the
    ``IpAddresses`` fact at deploy time; the inventory does not know them).
    """
    if inv.gateway is None or inv.gateway.host != name:
        return None
    from hearth.configs.gateway import USER

    v4 = [str(inv.lan.cidr), str(inv.overlay.cidr), *(str(n) for n in inv.lan.admin_networks if n.version == 4)]
    # IPv6 the LAN surely has: link-local and unique-local (fc00::/7, never a cloud
    # provider's); and the global prefix the ISP delegates, as the host sees it
    v6 = [str(n) for n in inv.lan.admin_networks if n.version == 6] + ["fe80::/10", "fc00::/7"]
    return {"user": USER, "allow": egress(inv, name), "dns": DNS,
            "closed4": tuple(dict.fromkeys(v4)), "closed6": disjoint([*v6, *lan_ipv6])}


def disjoint(networks: Sequence[str]) -> tuple[str, ...]:
    """``networks`` without those inside another one (nft refuses overlapping
    intervals in one set), in their first order.

    Example:
        disjoint(["fc00::/7", "fd00:1::/64", "2001:db8::/64"])  # ("fc00::/7", "2001:db8::/64")
    """
    nets = [ipaddress.ip_network(n) for n in dict.fromkeys(networks)]
    return tuple(str(n) for i, n in enumerate(nets)
                 if not any(n != m and n.version == m.version and n.subnet_of(m) for m in nets[:i] + nets[i + 1:]))
