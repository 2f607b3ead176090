"""Client devices on the overlay: what the gateway host adds for them, and their config.

The gateway host accepts every device as a WireGuard peer (``AllowedIPs`` = the
device's /32), holds the first address of ``client_devices.cidr`` (so the range is
routed to the overlay interface, with no extra route), opens the gateway port to
the range on the overlay interface, and forwards nothing from or to it. The range
is outside ``overlay.cidr``, so no other host's rules or WireGuard peers accept a
device's packets. A device's own config (:func:`device_config`) names the gateway
host as its only peer, reaching only the gateway's overlay address.
"""

from __future__ import annotations

from hearth.configs.firewall import Allow
from hearth.configs.overlay import KEEPALIVE, Peer
from hearth.inventory import Inventory


def accepts(inv: Inventory, name: str) -> bool:
    """True when ``name`` is the host that accepts the client devices (the gateway host)."""
    return (inv.client_devices is not None and inv.gateway is not None
            and inv.gateway.host == name and inv.overlay.kind == "wireguard")


def peers(inv: Inventory, name: str) -> list[Peer]:
    """The devices as peers of the gateway host (no endpoint: they roam)."""
    if not accepts(inv, name):
        return []
    assert inv.client_devices is not None
    return [Peer(name=f"client device {dev}", public_key=d.public_key, endpoint="",
                 allowed_ips=(f"{d.address}/32",))
            for dev, d in inv.client_devices.devices.items()]


def extra_address(inv: Inventory, name: str) -> str | None:
    """The gateway host's address in the devices' range (``10.77.1.1/24``), or None."""
    if not accepts(inv, name):
        return None
    cd = inv.client_devices
    assert cd is not None
    return f"{cd.gateway_address()}/{cd.cidr.prefixlen}"


def firewall_rules(inv: Inventory, name: str) -> list[Allow]:
    """The gateway port, open to the devices' range on the overlay interface."""
    if not accepts(inv, name):
        return []
    assert inv.client_devices is not None and inv.gateway is not None
    return [Allow("tcp", inv.gateway.port, (str(inv.client_devices.cidr),),
                  "hearth gateway (client devices)", (inv.overlay.interface,))]


def forward_blocked(inv: Inventory, name: str) -> list[str]:
    """Ranges nothing is forwarded from or to on this host (the devices' range)."""
    if not accepts(inv, name):
        return []
    assert inv.client_devices is not None
    return [str(inv.client_devices.cidr)]


def endpoint(inv: Inventory) -> str:
    """Where a device finds the gateway host's WireGuard: its LAN address and port."""
    assert inv.gateway is not None
    return f"{inv.hosts[inv.gateway.host].address}:{inv.overlay.port}"


def device_config(inv: Inventory, device: str, private_key: str, server_public_key: str,
                  endpoint_override: str | None = None) -> str:
    """The device's wg-quick / WireGuard-app config: one peer, the gateway's address only."""
    cd, gw = inv.client_devices, inv.gateway
    assert cd is not None and gw is not None
    d = cd.devices[device]
    gw_ip = inv.hosts[gw.host].overlay_ip
    return (f"# hearth client device {device}: reaches the gateway at http://{gw_ip}:{gw.port}\n"
            "[Interface]\n"
            f"PrivateKey = {private_key}\n"
            f"Address = {d.address}/32\n"
            "\n"
            "[Peer]\n"
            f"# {gw.host} (the gateway host)\n"
            f"PublicKey = {server_public_key}\n"
            f"Endpoint = {endpoint_override or endpoint(inv)}\n"
            f"AllowedIPs = {gw_ip}/32\n"
            f"PersistentKeepalive = {KEEPALIVE}\n")
