"""Hosts hearth routes to but does not manage (``managed: false``): where they are reached.

Such a host gets no role and no SSH (``hearth.inventory.groups.deployable``); its
``serves`` are upstreams like any other: the gateway health-probes them, routes to
them and plans them where the inventory gives the host's GPUs. The host's ``reach``
says where the gateway reaches them: ``overlay`` (its ``overlay_ip``; the box is a
peer of hearth's WireGuard, set up by hand with the ``wireguard_public_key`` it
gives, ``hearth.configs.overlay.members``) or ``lan`` (its LAN ``address``; no
``overlay_ip`` needed) -- an existing llama.cpp ``llama-server``, LM Studio or Ollama
box, a NAS. Without ``reach`` it is ``overlay`` when the key is given, else ``lan``.
The gateway host's firewall lets the gateway reach exactly these addresses and ports
(``hearth.configs.firewall_egress``); the traffic is plain HTTP on the LAN,
as the box serves it.

Example:
    upstream_address(inv, "nas")  # "192.168.1.40": managed: false, reach lan
"""

from __future__ import annotations

from hearth.inventory import Inventory


def reach(inv: Inventory, name: str) -> str:
    """``lan`` or ``overlay``: where the gateway reaches ``name``'s serves. Hosts hearth
    manages are always reached on the overlay; a ``managed: false`` host as its
    ``reach`` says, by default on the overlay when it gives its WireGuard key (or the
    overlay is one hearth does not run) and on the LAN otherwise."""
    host = inv.hosts[name]
    if host.managed:
        return "overlay"
    if host.reach is not None:
        return host.reach
    return "lan" if inv.overlay.kind == "wireguard" and not host.wireguard_public_key else "overlay"


def lan_only(inv: Inventory, name: str) -> bool:
    """True when ``name`` is a ``managed: false`` host reached on its LAN address."""
    return reach(inv, name) == "lan"


def upstream_address(inv: Inventory, name: str) -> str:
    """Where the gateway reaches ``name``'s serves: its overlay address, or its LAN
    address when it is a host hearth does not manage and that is not on the overlay."""
    host = inv.hosts[name]
    return str(host.address if lan_only(inv, name) else host.overlay_ip)
