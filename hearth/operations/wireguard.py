"""WireGuard: key pairs made on the host, configs that need every peer's key."""

from __future__ import annotations

import ipaddress
from io import StringIO

from gevent.lock import BoundedSemaphore
from pyinfra import host, state
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.operations import files

from hearth.configs import overlay as overlay_configs
from hearth.facts.wireguard import InterfaceAddresses, LivePublicKey, WireGuardPublicKey, key_paths
from hearth.inventory import load_cached


@operation()
def keypair(interface: str):
    """
    Make the WireGuard key pair of ``interface`` on the host, once.

    The private key is written by ``wg genkey`` straight to
    ``/etc/wireguard/<interface>.key`` (0600, umask 077): it is never printed,
    never read back, never leaves the host. The public half goes to
    ``<interface>.pub`` for peers to read (:class:`WireGuardPublicKey`).

    **Example:**

    .. code:: python

        wireguard.keypair(name="WireGuard key pair", interface="wg0")
    """
    if host.get_fact(WireGuardPublicKey, interface=interface):
        host.noop(f"{interface} already has a key pair")
        return
    private, public = key_paths(interface)
    yield StringCommand(
        f"install -d -m 0700 /etc/wireguard && (umask 077 && wg genkey > {private}.new"
        f" && wg pubkey < {private}.new > {public}.new && chmod 0644 {public}.new"
        f" && mv -f {private}.new {private} && mv -f {public}.new {public})"
    )


# While an operation executes, every host reads every peer's key at once. sshd
# allows 10 sessions per connection (MaxSessions), so with more than 10 peers the
# reads would fail: read each peer's key once per phase, one reader at a time,
# and share it. Keys cannot change during execution (the key pair step ran before).
_key_cache: dict[tuple[bool, str, str], str | None] = {}
_key_locks: dict[tuple[bool, str, str], BoundedSemaphore] = {}


def _read_key(peer: Host, interface: str) -> str | None:
    """A peer's public key: from /etc/wireguard on Linux, from hearth's key folder on Windows."""
    if peer.data.get("hearth_os") == "windows":
        from hearth.facts.windows import FirstLine
        from hearth.operations.windows.wireguard import paths

        return peer.get_fact(FirstLine, path=paths(interface)[1])
    return peer.get_fact(WireGuardPublicKey, interface=interface)


def _peer_key(peer: Host, interface: str) -> str | None:
    slot = (bool(state.is_executing), peer.name, interface)
    with _key_locks.setdefault(slot, BoundedSemaphore()):
        if slot not in _key_cache or not state.is_executing:
            _key_cache[slot] = _read_key(peer, interface)
        return _key_cache[slot]


def _peer_keys(inventory: str, name: str, interface: str) -> dict[str, str | None]:
    """Each peer's public key, read from the peer (None while it has none)."""
    inv = load_cached(inventory)
    by_name = {h.data.get("hearth_host", h.name): h for h in state.inventory}
    keys = {}
    for peer in overlay_configs.peer_names(inv, name):
        if peer not in by_name:
            raise OperationError(f"overlay peer {peer} is not in the pyinfra inventory")
        keys[peer] = _peer_key(by_name[peer], interface)
    return keys


@operation()
def mesh_config(inventory: str, host_name: str):
    """
    Write ``/etc/wireguard/<interface>.conf`` of inventory host ``host_name`` with
    every peer's key.

    Peers' public keys are facts read from the peers themselves when this
    operation runs. Run :func:`keypair` on every host first (an earlier
    operation): pyinfra executes an operation on all hosts before the next one, so
    at execution time every key exists even on a first run. While planning a first
    run a peer may have no key yet; the plan then shows a change, and execution
    renders the real keys (operations are re-evaluated when they execute). A key
    still missing at execution is an error, never a placeholder on disk.

    **Example:**

    .. code:: python

        wireguard.mesh_config(
            name="WireGuard config",
            inventory=host.data.hearth_inventory,
            host_name=host.data.hearth_host,
        )
    """
    inv = load_cached(inventory)
    iface = inv.overlay.interface
    keys = _peer_keys(inventory, host_name, iface)
    missing = sorted(peer for peer, key in keys.items() if not key)
    if missing and state.is_executing:
        raise OperationError(f"no WireGuard public key on peer(s) {', '.join(missing)} (key pair step failed there?)")
    config = overlay_configs.wg_config(inv, host_name, {k: v for k, v in keys.items() if v})
    yield from files.put._inner(
        src=StringIO(config.render()), dest=config.dest, mode=config.mode, user=config.user, group=config.group,
    )


@operation()
def running_key_current(interface: str):
    """
    Restart ``wg-quick@<interface>`` when the running interface uses another key
    than the key pair on disk (a key remade since it came up). No change when the
    interface is down (starting it loads the key) or already uses the key.

    **Example:**

    .. code:: python

        wireguard.running_key_current(name="wg0 runs with its key", interface="wg0")
    """
    live = host.get_fact(LivePublicKey, interface=interface)
    on_disk = host.get_fact(WireGuardPublicKey, interface=interface)
    if live and on_disk and live != on_disk:
        yield StringCommand(f"systemctl try-restart wg-quick@{interface}")
    else:
        host.noop(f"{interface} runs with its key pair" if live else f"{interface} is not up yet")


@operation()
def existing_interface(interface: str, cidr: str):
    """
    Check that an overlay hearth does not manage (e.g. Tailscale) is up here: the
    interface exists and has an address inside ``cidr``. Changes nothing.

    **Example:**

    .. code:: python

        wireguard.existing_interface(name="Overlay is up", interface="tailscale0", cidr="100.64.0.0/10")
    """
    network = ipaddress.ip_network(cidr)
    addresses = host.get_fact(InterfaceAddresses, interface=interface)
    if not addresses:
        raise OperationError(f"overlay interface {interface} does not exist or has no IPv4 address "
                             f"(overlay.kind is existing: bring it up first)")
    inside = [a for a in addresses if ipaddress.ip_interface(a).ip in network]
    if not inside:
        raise OperationError(f"overlay interface {interface} has {', '.join(addresses)}, none inside {cidr}")
    host.noop(f"{interface} has {inside[0]} in {cidr}")
    return
    yield  # an operation is a generator
