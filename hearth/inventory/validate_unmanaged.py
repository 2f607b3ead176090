"""Checks for hosts hearth routes to but does not manage (``managed: false``): ``reach``.

Each check yields ``(key path, message)``; :func:`hearth.inventory.validate.cross_checks`
turns them into problems the loader prefixes with file and line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from urllib.parse import urlsplit

from hearth.inventory.model import Inventory


def ip_literal(value: str) -> bool:
    """Whether ``value`` is an IP address (not a name): a firewall rule needs an exact address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_overlay_ips(inv: Inventory) -> Iterator[tuple[str, str]]:
    """Every host has an ``overlay_ip`` except a ``managed: false`` host reached on the LAN."""
    from hearth.configs.unmanaged import reach

    for name, host in inv.hosts.items():
        if host.overlay_ip is not None:
            continue
        if host.managed:
            yield f"hosts.{name}.overlay_ip", "required: hearth puts every host it manages on the overlay"
        elif host.wireguard_public_key:
            yield f"hosts.{name}.overlay_ip", ("required: this host gives its wireguard_public_key "
                                                "(a peer of the overlay)")
        elif reach(inv, name) == "overlay":
            yield f"hosts.{name}.overlay_ip", "required: reach overlay (the gateway reaches this host's serves there)"


def check_unmanaged_reach(inv: Inventory) -> Iterator[tuple[str, str]]:
    """``reach`` only on ``managed: false`` hosts; ``overlay`` needs the box on the
    overlay, ``lan`` an IP address the gateway host's firewall can name exactly."""
    from hearth.configs.unmanaged import reach

    for name, host in inv.hosts.items():
        path = f"hosts.{name}"
        if host.managed:
            if host.reach is not None:
                yield (f"{path}.reach", "only for managed: false hosts (hearth reaches the hosts it manages "
                       "on the overlay)")
            continue
        if host.reach == "overlay" and inv.overlay.kind == "wireguard" and not host.wireguard_public_key:
            yield (f"{path}.reach", "reach overlay needs the box's wireguard_public_key (hearth makes it a peer); "
                   "or reach: lan")
        if reach(inv, name) != "lan":
            continue
        if not ip_literal(host.address):
            yield (f"{path}.address", f"reach lan: {host.address!r} is not an IP address (the gateway host's "
                   "firewall lets the gateway reach exactly this address)")
        for i, serve in enumerate(host.serves):
            where = urlsplit(serve.base_url).hostname if serve.base_url else None
            if where is not None and not ip_literal(where):
                yield (f"{path}.serves[{i}].base_url", f"reach lan: {where!r} is not an IP address (the gateway "
                       "host's firewall lets the gateway reach exactly this address)")
