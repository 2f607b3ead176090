"""windows | overlay keys: the WireGuard key pair, made on the box before any peer's config needs it."""

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import wireguard


@deploy("windows overlay keys")
def apply_keys() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    if not configs.on_overlay(inv, name):
        return
    wireguard.keypair(name=f"WireGuard key pair for {inv.overlay.interface} (made on the box)",
                      interface=inv.overlay.interface,
                      wg_dir=configs.paths(inv, name)["windows_wireguard_dir"])


apply_keys()
