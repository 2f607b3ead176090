"""Role overlay: the WireGuard mesh (or hub-and-spoke) between every Linux host.

Two phases, because a peer's key may not exist when the deploy is planned:
1. every host makes its key pair on the host (one operation, run on all hosts
   before the next operation starts);
2. the config operation reads the peers' public keys as facts when it executes
   and renders them in (hearth.configs.overlay), so the first run converges and
   the second run changes nothing. A peer asleep or unreachable this run keeps
   its last known key (from the configs on the hosts that answer), and peer-only
   changes are applied with `wg syncconf`, so tunnels stay up.
Without WireGuard in the kernel (a fact), wg-quick runs wireguard-go. With
`overlay.kind: existing` the role only checks the interface is up in the CIDR.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from hearth.configs import overlay as configs
from hearth.facts.wireguard import KernelWireGuard
from hearth.inventory import load_cached
from hearth.operations import config_files, paths, services, wireguard
from hearth.operations.apt import packages_installed


@deploy("overlay")
def apply_overlay() -> None:
    inv = load_cached(host.data.hearth_inventory)
    iface = inv.overlay.interface
    if inv.overlay.kind == "existing":
        wireguard.existing_interface(name=f"Existing overlay {iface} is up in {inv.overlay.cidr}",
                                     interface=iface, cidr=str(inv.overlay.cidr))
        return

    kernel = host.get_fact(KernelWireGuard)
    packages = ["wireguard-tools"] + ([] if kernel else ["wireguard-go"])
    packages_installed("WireGuard packages" + ("" if kernel else " (userspace: no kernel module)"), packages)

    wireguard.keypair(name=f"WireGuard key pair for {iface} (made on the host)", interface=iface)
    paths.file(name=f"Private key of {iface} is 0600 root", path=f"/etc/wireguard/{iface}.key",
               mode="0600", user="root", group="root")

    dropin = configs.userspace_dropin()
    if kernel:
        unit = paths.file(name="No userspace drop-in (kernel WireGuard)", path=dropin.dest, present=False)
    else:
        unit = config_files.put(name="wg-quick uses wireguard-go", src=StringIO(dropin.render()), dest=dropin.dest,
                                mode=dropin.mode)
    server.shell(name="systemd daemon-reload (wg-quick drop-in changed)",
                 commands=["systemctl daemon-reload"], _if=unit.did_change)

    # Peer-only changes are applied by `wg syncconf` (tunnels stay up); an [Interface]
    # change restarts: the private key is loaded by PostUp, which only runs on up.
    wireguard.mesh_config(name=f"{iface} config with every peer's public key (peers only: wg syncconf)",
                          inventory=host.data.hearth_inventory, host_name=host.data.hearth_host)
    server.shell(name=f"Restart {iface} (wg-quick unit changed)",
                 commands=[f"systemctl try-restart wg-quick@{iface}"], _if=unit.did_change)
    # ...so a key pair remade since the interface came up needs a restart too.
    wireguard.running_key_current(name=f"{iface} runs with the key pair on disk", interface=iface)
    services.service(name=f"wg-quick@{iface} enabled and running", service=f"wg-quick@{iface}",
                     running=True, enabled=True)


apply_overlay()
