"""windows | wol: the wired NIC wakes the box on a magic packet (both switches a driver update resets)."""

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import wol


@deploy("windows wol")
def apply_wol() -> None:
    inv = load_cached(host.data.hearth_inventory)
    nic = configs.wake_nic(inv, host.data.hearth_host)
    if nic is None:
        return
    wol.nic_wakes(name=f"Wake-on-LAN on the wired NIC ({nic.mac or nic.name})", mac=nic.mac, adapter=nic.name)


apply_wol()
