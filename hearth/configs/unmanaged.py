"""Hosts hearth routes to but does not manage (``managed: false``): where they are reached.

Such a host gets no role and no SSH (``hearth.inventory.groups.deployable``); its
``serves`` are upstreams like any other: the gateway health-probes them, routes to
them and plans them where the inventory gives the host's GPUs. It is on hearth's
WireGuard overlay only when the inventory gives its ``wireguard_public_key`` (its
WireGuard set up by hand, ``hearth.configs.overlay.members``); otherwise -- an
existing llama.cpp ``llama-server``, LM Studio or Ollama box, a NAS -- the gateway
reaches its serves on its LAN ``address``. The gateway host's firewall filters only
what comes in (no output chain) and accepts the answers as established, so that
egress needs no rule; the traffic is plain HTTP on the LAN, as the box serves it.

Example:
    upstream_address(inv, "nas")  # "192.168.1.40": managed: false, no WireGuard key
"""

from __future__ import annotations

from hearth.inventory import Inventory


def lan_only(inv: Inventory, name: str) -> bool:
    """True when ``name`` is a ``managed: false`` host that is not on hearth's WireGuard
    overlay (no ``wireguard_public_key``): its serves are reached on its LAN address."""
    host = inv.hosts[name]
    return not host.managed and inv.overlay.kind == "wireguard" and not host.wireguard_public_key


def upstream_address(inv: Inventory, name: str) -> str:
    """Where the gateway reaches ``name``'s serves: its overlay address, or its LAN
    address when it is a host hearth does not manage and that is not on the overlay."""
    host = inv.hosts[name]
    return str(host.address if lan_only(inv, name) else host.overlay_ip)
