"""Facts about the host's network interfaces."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from pyinfra.api import FactBase

# A LAN's on-link prefix is a /64 (SLAAC); DHCPv6 hands out /128 addresses inside it.
LAN_PREFIX_LEN = 64
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class IpAddresses(FactBase[list[dict[str, Any]]]):
    """
    The host's interfaces with their addresses, as ``ip -j address show`` prints them
    (``[]`` where iproute2 cannot print JSON). Read it with :func:`lan_ipv6_prefixes`.

    .. code:: python

        links = host.get_fact(IpAddresses)
        lan_ipv6_prefixes(links, "192.168.1.40")  # ["2001:db8:40:1::/64"]
    """

    def command(self) -> str:
        return "ip -j address show 2>/dev/null || echo '[]'"

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        try:
            links = json.loads("\n".join(output) or "[]")
        except ValueError:
            return []
        return [link for link in links if isinstance(link, dict)] if isinstance(links, list) else []


def lan_ipv6_prefixes(links: list[dict[str, Any]] | None, address: str) -> list[str]:
    """The global IPv6 prefixes on the interface that holds the LAN address ``address``.

    A router may give the LAN a global prefix from the ISP beside its IPv4 network;
    the inventory does not know it, the host does. Unique-local addresses (``fc00::/7``,
    which Linux also scopes "global") and the other interfaces (the overlay, pods,
    containers) are left out; a /128 (DHCPv6) counts as its /64.

    Example:
        lan_ipv6_prefixes([{"addr_info": [{"family": "inet", "local": "192.168.1.40"},
            {"family": "inet6", "local": "2001:db8:40:1::40", "prefixlen": 64, "scope": "global"}]}],
            "192.168.1.40")  # ["2001:db8:40:1::/64"]
    """
    out: list[str] = []
    for link in links or []:  # None: the fact was not gathered (a dry plan)
        infos = [a for a in link.get("addr_info") or [] if isinstance(a, dict)]
        if not any(a.get("family") == "inet" and a.get("local") == address for a in infos):
            continue
        for a in infos:
            if a.get("family") != "inet6" or a.get("scope") != "global" or not a.get("local"):
                continue
            length = min(int(a.get("prefixlen") or 128), LAN_PREFIX_LEN)
            net = ipaddress.ip_network(f"{a['local']}/{length}", strict=False)
            if not net.subnet_of(UNIQUE_LOCAL):
                out.append(str(net))
    return list(dict.fromkeys(out))
