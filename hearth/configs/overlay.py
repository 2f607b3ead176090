"""The WireGuard overlay's files: one wg-quick config per host, and the userspace drop-in.

The private key never appears here: it is generated on the host and loaded by a
``PostUp`` line, so these files hold no secret and ``hearth render`` shows them as
they are. Peers' public keys are facts (read from each host at deploy time).

``facts`` (all optional):
    wireguard_keys   -- {host name: public key}; a missing key renders a placeholder
    wireguard_kernel -- bool: the kernel has WireGuard; False adds the wireguard-go drop-in
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hearth.configs import ConfigFile, placeholder
from hearth.inventory import Inventory

USERSPACE_DROPIN = "/etc/systemd/system/wg-quick@.service.d/hearth-userspace.conf"
KEEPALIVE = 25


@dataclass(frozen=True)
class Peer:
    name: str
    public_key: str
    endpoint: str
    allowed_ips: tuple[str, ...]


def config_path(inv: Inventory) -> str:
    return f"/etc/wireguard/{inv.overlay.interface}.conf"


def members(inv: Inventory) -> list[str]:
    """Hosts on hearth's WireGuard overlay: every Linux host, and each Windows host
    reached over the overlay (``windows.reach: overlay``, the default)."""
    return [name for name, host in inv.hosts.items()
            if host.os == "linux" or host.windows is None or host.windows.reach == "overlay"]


def peer_names(inv: Inventory, name: str) -> list[str]:
    """The hosts ``name`` keeps a tunnel to: every other member, or only the hub."""
    others = [other for other in members(inv) if other != name]
    if inv.overlay.topology == "hub":
        hub = inv.overlay.hub
        return others if name == hub else [h for h in others if h == hub]
    return others


def peers(inv: Inventory, name: str, keys: dict[str, str]) -> list[Peer]:
    hub_spoke = inv.overlay.topology == "hub" and name != inv.overlay.hub
    out = []
    for other in peer_names(inv, name):
        host = inv.hosts[other]
        # A spoke reaches every overlay address through the hub; others by /32.
        allowed = (str(inv.overlay.cidr),) if hub_spoke else (f"{host.overlay_ip}/32",)
        out.append(Peer(
            name=other,
            public_key=keys.get(other) or placeholder(f"public key of {other}"),
            endpoint=f"{host.address}:{inv.overlay.port}",
            allowed_ips=allowed,
        ))
    return out


def wg_config(inv: Inventory, name: str, keys: dict[str, str] | None = None) -> ConfigFile:
    host = inv.hosts[name]
    iface = inv.overlay.interface
    return ConfigFile(
        dest=config_path(inv),
        template="overlay/wg.conf.j2",
        context={
            "host": name,
            "address": f"{host.overlay_ip}/{inv.overlay.cidr.prefixlen}",
            "port": inv.overlay.port,
            "private_key_path": f"/etc/wireguard/{iface}.key",
            "peers": peers(inv, name, keys or {}),
            "keepalive": KEEPALIVE,
        },
        mode="0600",
    )


def userspace_dropin() -> ConfigFile:
    return ConfigFile(dest=USERSPACE_DROPIN, template="overlay/userspace.conf.j2")


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """Every overlay file written on ``name`` (none when the overlay already exists)."""
    facts = facts or {}
    if inv.overlay.kind != "wireguard" or inv.hosts[name].os != "linux":
        return []
    files = [wg_config(inv, name, facts.get("wireguard_keys"))]
    if facts.get("wireguard_kernel") is False:
        files.append(userspace_dropin())
    return files
