"""The firewall rule that opens the gateway port on the LAN (``gateway.lan``, opt-in).

Open only to the CIDRs listed (the admin LAN by default, never 0.0.0.0/0 unless
listed), only on the gateway host, only the gateway port; the admin API is refused
off loopback and the overlay by the gateway itself (``admin_networks``).
"""

from __future__ import annotations

from hearth.configs.firewall import Allow
from hearth.inventory import Inventory


def lan_rules(inv: Inventory, name: str) -> list[Allow]:
    """The LAN allow rule of the gateway host, or nothing."""
    gw = inv.gateway
    if gw is None or not gw.lan.listen or gw.host != name:
        return []
    return [Allow("tcp", gw.port, tuple(gw.lan.sources(inv.lan.admin)), "hearth gateway (LAN)")]
