"""Lab: the LAN's global IPv6 prefix is closed to the gateway, with real packets (issue 22).

A router may give the LAN a global IPv6 prefix beside its IPv4 network; the inventory
does not know it. Here the gateway host and a peer get addresses from a documentation
prefix (2001:db8::/32, never routed: the packets stay on the lab bridge) on their LAN
interfaces, the firewall role runs again on the gateway host, and then: the gateway's
user is refused at once toward the peer's address in that prefix, root's connection
leaves the host. The addresses are removed and the role run again in a ``finally``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hearth.deploy_data import group_defaults
from hearth.facts.network import lan_ipv6_prefixes
from hearth.inventory import load_inventory
from hearth.lab import cycle
from tests.lab.test_gateway_egress import REFUSED, connect

pytestmark = pytest.mark.lab

PREFIX = "2001:db8:4e57:1"  # a /64 of the documentation range
REFUSED_V6 = "EACCES"


def run_firewall_role(inventory_yml: Path, host: str) -> None:
    """The firewall role alone on ``host`` (pyinfra runs a role file as a deploy)."""
    run = cycle.deploy(cycle.pyinfra_inventory_for(inventory_yml), cycle.REPO / "roles/firewall/main.py",
                       limit=host, timeout=300)
    assert run.ok, run.stderr_tail


def lan_interface(node: Any, address: str) -> str:
    """The interface that holds the LAN address ``address``."""
    links = json.loads(node.check_output("ip -j address show"))
    return next(link["ifname"] for link in links
                if any(a.get("local") == address for a in link.get("addr_info") or []))


def test_the_lans_global_ipv6_prefix_is_closed_to_the_gateway(lab: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    gw = inv.gateway.host
    others = [n for n, h in inv.hosts.items() if n != gw and h.managed and not h.sleep.sleeps and h.os == "linux"]
    if not others:
        pytest.skip("no host besides the gateway's that stays up")
    peer_name = others[0]
    port = inv.hosts[peer_name].ssh_port or inv.ssh.port
    node, peer = lab.host(gw), lab.host(peer_name)
    added = [(node, f"{PREFIX}::1", lan_interface(node, inv.hosts[gw].address)),
             (peer, f"{PREFIX}::2", lan_interface(peer, inv.hosts[peer_name].address))]
    try:
        for machine, address, iface in added:
            machine.check_output(f"sudo ip -6 address add {address}/64 dev {iface} nodad")
        links = json.loads(node.check_output("ip -j address show"))
        assert lan_ipv6_prefixes(links, inv.hosts[gw].address) == [f"{PREFIX}::/64"]  # what the role reads
        run_firewall_role(lab.inventory, gw)
        # the chain's reject, delivered locally at once: ICMPv6 admin-prohibited is EACCES
        # to connect() (Linux's icmpv6 table), where IPv4's is EHOSTUNREACH
        assert connect(node, f"{PREFIX}::2", port, as_gateway=True) in (REFUSED_V6, REFUSED)
        # root's connection is not the output chain's business: it leaves the host and
        # the peer answers or its own firewall drops it (IPv6 from the LAN), never refused here
        assert connect(node, f"{PREFIX}::2", port, as_gateway=False) in ("connected", "ECONNREFUSED", "timeout")
    finally:
        for machine, address, iface in added:
            machine.run(f"sudo ip -6 address del {address}/64 dev {iface}")
        run_firewall_role(lab.inventory, gw)
    assert lan_ipv6_prefixes(json.loads(node.check_output("ip -j address show")), inv.hosts[gw].address) == []
