"""Role wol: Linux hosts that sleep wake on a magic packet to the inventory's MAC.

A systemd .link file (WakeOnLan=magic) makes it stick across reboots; ethtool turns
it on now; the WakeOnLan fact reports a NIC that cannot wake (with the reason)
instead of pretending it can.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import wol as configs
from hearth.inventory import load_cached
from hearth.operations import config_files, paths
from hearth.operations import wol as wol_ops
from hearth.operations.apt import packages_installed


@deploy("wol")
def apply_wol() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    link_files = configs.host_files(inv, name)
    if not link_files:
        return
    (link,) = link_files
    packages_installed("ethtool (reads and sets Wake-on-LAN)", ["ethtool"])
    paths.directory(name="systemd .link folder", path="/etc/systemd/network", mode="0755")
    config_files.put(name="Wake-on-LAN .link for the inventory's MAC (applied at boot)", src=StringIO(link.render()),
                     dest=link.dest, mode=link.mode)
    wol_ops.enabled(name="Wake-on-LAN on now (ethtool), if the NIC supports it", mac=configs.mac(inv, name))


apply_wol()
