"""Wake-on-LAN for Linux hosts that sleep: a systemd .link file for the inventory's MAC.

udev applies a .link file when the NIC appears (at boot), so the setting survives
reboots; roles/wol also switches it on at once with ethtool. A .link file replaces
99-default.link for the devices it matches, so it repeats that file's naming
policies: the interface keeps its name. (On a host where netplan writes its own
``10-netplan-*.link`` for this NIC, netplan's file wins: set ``wakeonlan: true`` there.)
"""

from __future__ import annotations

from typing import Any

from hearth.configs import ConfigFile
from hearth.inventory import Inventory

LINK = "/etc/systemd/network/50-hearth-wol.link"


def wakes_by_lan(inv: Inventory, name: str) -> bool:
    host = inv.hosts[name]
    return host.os == "linux" and host.sleep.sleeps and host.sleep.wake == "wol" and host.mac is not None


def mac(inv: Inventory, name: str) -> str:
    return str(inv.hosts[name].mac).lower()


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not wakes_by_lan(inv, name):
        return []
    return [ConfigFile(dest=LINK, template="wol/hearth-wol.link.j2", context={"mac": mac(inv, name)})]
