"""Checks for client devices on the overlay (``client_devices``, ``hearth client add``).

Each check yields ``(key path, message)`` like :mod:`hearth.inventory.validate_reach`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from hearth.inventory.model import Inventory


def _others(inv: Inventory) -> list[tuple[str, ipaddress.IPv4Network]]:
    nets = [("overlay.cidr", inv.overlay.cidr), ("lan.cidr", inv.lan.cidr)]
    if inv.k3s is not None:
        for key in ("cluster_cidr", "service_cidr"):
            value = getattr(inv.k3s, key, None)
            if value is not None:
                nets.append((f"k3s.{key}", ipaddress.ip_network(str(value))))
    return nets


def check_client_devices(inv: Inventory) -> Iterator[tuple[str, str]]:
    """Devices need the WireGuard overlay and a gateway; their range and addresses are
    their own (outside every other network, the first address kept for the gateway)."""
    cd = inv.client_devices
    if cd is None:
        return
    if inv.overlay.kind != "wireguard":
        yield ("client_devices", "client devices need hearth's WireGuard overlay "
                                 f"(overlay.kind is {inv.overlay.kind!r})")
    if inv.gateway is None:
        yield ("client_devices", "client devices reach the gateway: add a gateway section")
    for key, net in _others(inv):
        if cd.cidr.version == net.version and cd.cidr.overlaps(net):
            yield ("client_devices.cidr", f"{cd.cidr} overlaps {key} ({net}): client devices "
                                          "need a range of their own")
    if cd.cidr.num_addresses < 4:
        yield ("client_devices.cidr", f"{cd.cidr} is too small (a /30 at least)")
    reserved = cd.gateway_address() if cd.cidr.num_addresses >= 4 else None
    seen: dict[ipaddress.IPv4Address, str] = {}
    for name, dev in cd.devices.items():
        where = f"client_devices.devices.{name}"
        if name in inv.hosts:
            yield (where, f"{name!r} is also a host of the inventory: devices need their own names")
        if dev.address not in cd.cidr or dev.address in (cd.cidr.network_address,
                                                          cd.cidr.broadcast_address):
            yield (f"{where}.address", f"{dev.address} is not a host address of "
                                       f"client_devices.cidr ({cd.cidr})")
        elif dev.address == reserved:
            yield (f"{where}.address", f"{dev.address} is the gateway host's own address in "
                                       f"{cd.cidr} (the first one)")
        elif dev.address in seen:
            yield (f"{where}.address", f"{dev.address} is already {seen[dev.address]}'s")
        seen.setdefault(dev.address, name)
    keys: dict[str, str] = {}
    for name, dev in cd.devices.items():
        if dev.public_key in keys:
            yield (f"client_devices.devices.{name}.public_key",
                   f"the same key as {keys[dev.public_key]}: each device has its own key pair")
        keys.setdefault(dev.public_key, name)
