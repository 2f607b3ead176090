"""The WireGuard overlay's files: one wg-quick config per host, and the userspace drop-in.

The private key never appears here: it is generated on the host and loaded by a
``PostUp`` line, so these files hold no secret and ``hearth render`` shows them as
they are. Peers' public keys are facts (read from each host at deploy time).

``facts`` (all optional):
    wireguard_keys   -- {host name: public key}; a missing key renders a placeholder
                        (``hearth render``), or leaves the peer out (``omit_unknown``:
                        the deploy, for a peer asleep since before it ever had a key)
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
    """Hosts on hearth's WireGuard overlay: every Linux host hearth manages, each
    Windows host reached over the overlay (``windows.reach: overlay``, the default),
    and the ``managed: false`` hosts that give their ``wireguard_public_key``."""
    def member(host: Any) -> bool:
        if not host.managed:
            return bool(host.wireguard_public_key)
        return host.os == "linux" or host.windows is None or host.windows.reach == "overlay"

    return [name for name, host in inv.hosts.items() if member(host)]


def inventory_keys(inv: Inventory) -> dict[str, str]:
    """Public keys the inventory gives (hosts hearth does not manage)."""
    return {name: host.wireguard_public_key for name, host in inv.hosts.items() if host.wireguard_public_key}


def peer_names(inv: Inventory, name: str) -> list[str]:
    """The hosts ``name`` keeps a tunnel to: every other member, or only the hub."""
    others = [other for other in members(inv) if other != name]
    if inv.overlay.topology == "hub":
        hub = inv.overlay.hub
        return others if name == hub else [h for h in others if h == hub]
    return others


def peers(inv: Inventory, name: str, keys: dict[str, str], omit_unknown: bool = False) -> list[Peer]:
    hub_spoke = inv.overlay.topology == "hub" and name != inv.overlay.hub
    out = []
    for other in peer_names(inv, name):
        host = inv.hosts[other]
        if omit_unknown and not keys.get(other):
            continue
        # A spoke reaches every overlay address through the hub; others by /32.
        allowed = (str(inv.overlay.cidr),) if hub_spoke else (f"{host.overlay_ip}/32",)
        out.append(Peer(
            name=other,
            public_key=keys.get(other) or placeholder(f"public key of {other}"),
            endpoint=f"{host.address}:{inv.overlay.port}",
            allowed_ips=allowed,
        ))
    return out


def wg_config(inv: Inventory, name: str, keys: dict[str, str] | None = None, omit_unknown: bool = False) -> ConfigFile:
    from hearth.configs import client_devices  # the gateway host accepts client devices

    host = inv.hosts[name]
    iface = inv.overlay.interface
    address = f"{host.overlay_ip}/{inv.overlay.cidr.prefixlen}"
    devices_address = client_devices.extra_address(inv, name)
    return ConfigFile(
        dest=config_path(inv),
        template="overlay/wg.conf.j2",
        context={
            "host": name,
            "address": f"{address}, {devices_address}" if devices_address else address,
            "port": inv.overlay.port,
            "private_key_path": f"/etc/wireguard/{iface}.key",
            "peers": peers(inv, name, keys or {}, omit_unknown) + client_devices.peers(inv, name),
            "keepalive": KEEPALIVE,
        },
        mode="0600",
    )


def interface_section(text: str) -> str:
    """The ``[Interface]`` part of a wg-quick config (everything before the first
    ``[Peer]``): when only the peers changed, ``wg syncconf`` applies the change
    without taking the interface down; an interface change needs a restart."""
    return text.split("\n[Peer]", 1)[0].strip()


def peer_keys_in(text: str) -> dict[str, str]:
    """{peer name: public key} from a config this module rendered (``# name`` then
    ``PublicKey = ...``): the last known keys a host keeps for its peers."""
    found: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        line = line.strip()
        if line == "[Peer]":
            name = None
        elif line.startswith("# ") and name is None:
            name = line[2:].strip()
        elif line.startswith("PublicKey") and name:
            key = line.partition("=")[2].strip()
            if key and not key.startswith("<"):
                found[name] = key
    return found


def userspace_dropin() -> ConfigFile:
    return ConfigFile(dest=USERSPACE_DROPIN, template="overlay/userspace.conf.j2")


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """Every overlay file written on ``name`` (none when the overlay already exists)."""
    facts = facts or {}
    if inv.overlay.kind != "wireguard" or inv.hosts[name].os != "linux" or name not in members(inv):
        return []
    keys = {**inventory_keys(inv), **(facts.get("wireguard_keys") or {})}
    files = [wg_config(inv, name, keys)]
    if facts.get("wireguard_kernel") is False:
        files.append(userspace_dropin())
    return files
