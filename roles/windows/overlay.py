"""windows | overlay: WireGuard for Windows' tunnel service with every peer's key (or nothing: ssh_tunnel)."""

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import service, wireguard


@deploy("windows overlay")
def apply_overlay() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    if not configs.on_overlay(inv, name):
        return
    iface = inv.overlay.interface
    wireguard.windows_tunnel(name=f"{iface} tunnel service with every peer's public key",
                             inventory=host.data.hearth_inventory, host_name=name,
                             wg_dir=configs.paths(inv, name)["windows_wireguard_dir"])
    service.service_running(name=f"{iface} tunnel starts at boot and runs", service=f"WireGuardTunnel${iface}")


apply_overlay()
