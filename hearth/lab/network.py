"""The home LAN: a bridge, one network namespace + veth per machine, an nft fence.

Each container gets a namespace ``hearth-<name>`` whose ``eth0`` carries the
inventory's MAC and address, with a default route via this machine's bridge
address; a VM gets a tap port on the bridge instead (its NIC carries the MAC,
the guest sets its own address). The nft table ``inet hearth_lab`` drops anything that would be routed
off the bridge, so lab traffic stays on the lab LAN whatever the host's sysctls.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hearth.lab.sh import LabError, ok, run

NETNS_PREFIX = os.environ.get("HEARTH_LAB_NETNS_PREFIX", "hearth-")


def netns_name(machine: str) -> str:
    """The machine's network namespace name."""
    return f"{NETNS_PREFIX}{machine}"


def _link_key(machine: str) -> bytes:
    return (machine if NETNS_PREFIX == "hearth-" else NETNS_PREFIX + machine).encode()


def veth_name(machine: str) -> str:
    """Host-side veth name (<= 15 chars, stable per machine name)."""
    return "hl" + hashlib.sha1(_link_key(machine)).hexdigest()[:10]


def tap_name(machine: str) -> str:
    """Host-side tap name of a VM's NIC (<= 15 chars, stable per machine name)."""
    return "hk" + hashlib.sha1(_link_key(machine)).hexdigest()[:10]


def link_exists(name: str) -> bool:
    """True when a link ``name`` exists in the host namespace."""
    return Path(f"/sys/class/net/{name}").exists()


def netns_exists(name: str) -> bool:
    """True when the named network namespace exists."""
    return Path(f"/run/netns/{name}").exists()


def ensure_bridge(bridge: str, host_cidr: str) -> bool:
    """Create the bridge with ``host_cidr`` on it; True when this call created it."""
    created = False
    if not link_exists(bridge):
        run(["ip", "link", "add", bridge, "type", "bridge"])
        created = True
    elif not Path(f"/sys/class/net/{bridge}/bridge").exists():
        raise LabError(f"{bridge} exists and is not a bridge; refusing to touch it")
    addrs = run(["ip", "-o", "-4", "addr", "show", "dev", bridge]).stdout
    if f" {host_cidr} " not in addrs:
        run(["ip", "addr", "add", host_cidr, "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    return created


def ensure_fence(table: str, bridge: str) -> None:
    """(Re)create the nft table that keeps lab traffic on the bridge."""
    ruleset = f"""\
table inet {table}
delete table inet {table}
table inet {table} {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        iifname "{bridge}" oifname != "{bridge}" counter drop
        oifname "{bridge}" iifname != "{bridge}" counter drop
    }}
}}
"""
    run(["nft", "-f", "-"], input=ruleset)


def remove_fence(table: str) -> None:
    """Delete the lab's nft table if present."""
    if ok(["nft", "list", "table", "inet", table]):
        run(["nft", "delete", "table", "inet", table])


def ensure_machine_link(
    netns: str, veth: str, bridge: str, mac: str, cidr: str, gateway: str
) -> None:
    """Namespace + veth pair: ``eth0`` (MAC, address, default route) inside, port outside."""
    if not netns_exists(netns):
        run(["ip", "netns", "add", netns])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])
    if not link_exists(veth):
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", veth, "master", bridge, "up"])
    run(["ip", "-n", netns, "link", "set", "eth0", "address", mac])
    have = run(["ip", "-n", netns, "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
    if f" {cidr} " not in have:
        run(["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    run(["ip", "-n", netns, "route", "replace", "default", "via", gateway])


def ensure_tap(tap: str, bridge: str) -> None:
    """A tap port on ``bridge`` for a VM's NIC (QEMU attaches to it by name)."""
    if not link_exists(tap):
        run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
    run(["ip", "link", "set", tap, "master", bridge, "up"])


def remove_machine_link(netns: str, veth: str, tap: str = "") -> None:
    """Delete the veth, the namespace and the tap, those that exist."""
    for link in (veth, tap):
        if link and link_exists(link):
            run(["ip", "link", "del", link])
    if netns and netns_exists(netns):
        run(["ip", "netns", "del", netns])


def remove_bridge(bridge: str) -> None:
    """Delete the bridge if it exists."""
    if link_exists(bridge):
        run(["ip", "link", "del", bridge])
