"""The gateway's egress closes the LAN's global IPv6 prefix, read from the host (issue 22).

A router may give the LAN a global prefix from the ISP beside its IPv4 network; the
inventory does not know it, so the firewall role reads it from the gateway host's LAN
interface (``IpAddresses``) and the output chain rejects the gateway's connections to
it as it does the LAN's IPv4 network.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hearth.configs import firewall
from hearth.configs.firewall_egress import disjoint
from hearth.deploy_data import group_defaults
from hearth.facts.network import IpAddresses, lan_ipv6_prefixes
from hearth.inventory import Inventory, load_inventory
from tests.unit.nft_check import nft_check

LAN = "192.168.1.10"
# `ip -j address show` on a gateway host: a SLAAC prefix and a privacy address in it,
# a DHCPv6 /128 from a second prefix, a unique-local and a link-local address on the
# LAN NIC; the overlay and a pod bridge with global IPv6 of their own.
IP_JSON = [
    {"ifindex": 1, "ifname": "lo", "addr_info": [
        {"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"},
        {"family": "inet6", "local": "::1", "prefixlen": 128, "scope": "host"}]},
    {"ifindex": 2, "ifname": "enp3s0", "addr_info": [
        {"family": "inet", "local": LAN, "prefixlen": 24, "scope": "global"},
        {"family": "inet6", "local": "2001:db8:40:1:5054:ff:fe12:3456", "prefixlen": 64, "scope": "global",
         "dynamic": True, "mngtmpaddr": True},
        {"family": "inet6", "local": "2001:db8:40:1:9d3c:1f2e:aa01:7b2c", "prefixlen": 64, "scope": "global",
         "temporary": True, "dynamic": True},
        {"family": "inet6", "local": "2001:db8:41:0:0:0:0:10", "prefixlen": 128, "scope": "global"},
        {"family": "inet6", "local": "fd12:3456:789a:1::10", "prefixlen": 64, "scope": "global"},
        {"family": "inet6", "local": "fe80::5054:ff:fe12:3456", "prefixlen": 64, "scope": "link"}]},
    {"ifindex": 3, "ifname": "wg0", "addr_info": [
        {"family": "inet", "local": "10.77.0.1", "prefixlen": 24, "scope": "global"},
        {"family": "inet6", "local": "2001:db8:77::1", "prefixlen": 64, "scope": "global"}]},
    {"ifindex": 4, "ifname": "cni0", "addr_info": [
        {"family": "inet6", "local": "2001:db8:42::1", "prefixlen": 64, "scope": "global"}]},
]
CAN_CHECK = shutil.which("nft") is not None and shutil.which("unshare") is not None and os.geteuid() == 0


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(Path(__file__).resolve().parents[2] / "inventory" / "example.yml", group_defaults())


def _closed6(text: str) -> str:
    block = text.split("chain gateway_egress {", 1)[1].split("\n\t}", 1)[0]
    (line,) = [ln.strip() for ln in block.splitlines() if ln.strip().startswith("ip6 daddr {")]
    return line


def test_the_lan_nics_global_prefixes_only() -> None:
    assert lan_ipv6_prefixes(IP_JSON, LAN) == ["2001:db8:40:1::/64", "2001:db8:41::/64"]


def test_no_prefix_without_the_lan_address_or_global_ipv6() -> None:
    assert lan_ipv6_prefixes(IP_JSON, "192.168.1.99") == []  # the LAN address is on no interface
    v4_only = [{"ifname": "eth0", "addr_info": [{"family": "inet", "local": LAN, "prefixlen": 24}]}]
    assert lan_ipv6_prefixes(v4_only, LAN) == []


def test_the_fact_reads_ip_json_and_survives_an_old_iproute2() -> None:
    fact = IpAddresses()
    assert "ip -j address show" in fact.command()
    assert fact.process(json.dumps(IP_JSON, indent=1).splitlines()) == IP_JSON
    assert fact.process(["Option \"-j\" is unknown, try \"ip -help\".", "[]"]) == []
    assert fact.process(["[]"]) == []


def test_disjoint_drops_networks_inside_another() -> None:
    assert disjoint(["fe80::/10", "fc00::/7", "fd12:3456:789a:1::/64", "2001:db8:40:1::/64", "fc00::/7"]) == (
        "fe80::/10", "fc00::/7", "2001:db8:40:1::/64")
    assert disjoint(["2001:db8:40:1::/64", "2001:db8:40::/48"]) == ("2001:db8:40::/48",)


def test_the_gateway_hosts_egress_closes_the_lan_prefix(inv: Inventory, tmp_path: Path) -> None:
    gw = inv.gateway.host if inv.gateway else ""
    prefixes = lan_ipv6_prefixes(IP_JSON, LAN)
    text = firewall.ruleset(inv, gw, {"lan_ipv6": prefixes}).render()
    closed = _closed6(text)
    assert closed.endswith('reject with icmpx admin-prohibited comment "the gateway reaches on the LAN and the '
                           'overlay only what the inventory names"')
    assert all(p in closed for p in [*prefixes, "fe80::/10", "fc00::/7"]), closed
    assert "2001:db8:77::" not in closed and "2001:db8:42::" not in closed  # the overlay's, the pods'
    # Without the fact (`hearth render`), the inventory's ranges only.
    assert "2001:db8" not in _closed6(firewall.ruleset(inv, gw).render())
    # Another host's ruleset has no output chain, facts or not.
    other = next(h for h in inv.linux_hosts() if h != gw)
    assert "chain output" not in firewall.ruleset(inv, other, {"lan_ipv6": prefixes}).render()
    if CAN_CHECK:
        path = tmp_path / "rules.nft"
        path.write_text(text)
        check = nft_check(path)
        assert check.returncode == 0, check.stderr
