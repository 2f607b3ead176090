"""WireGuard: key pairs made on the host, configs that need every peer's key."""

from __future__ import annotations

import ipaddress
import shlex
from io import StringIO

from gevent.lock import BoundedSemaphore
from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, OperationError, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.operations import files

from hearth.configs import overlay as overlay_configs
from hearth.facts.wireguard import (
    InterfaceAddresses,
    LivePublicKey,
    WireGuardConfig,
    WireGuardPublicKey,
    key_paths,
)
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
# reads would fail: read each host's facts once per phase, one reader at a time,
# and share them. Keys cannot change during execution (the key pair step ran before).
_cache: dict[tuple[bool, str, str, str], str | None] = {}
_locks: dict[tuple[bool, str, str, str], BoundedSemaphore] = {}
_reported: set[str] = set()


def _reachable(peer: Host) -> bool:
    """Connected in this run and not dropped: a host that did not answer (asleep,
    off, unreachable) or was left out by --limit is never asked (asking would try to
    connect again, and raise). When no connection phase ran at all (a plan made
    offline against stand-in facts, as the unit tests do), every host is asked."""
    if peer in state.failed_hosts:
        return False
    return peer.connected or peer in state.activated_hosts or not state.activated_hosts


def _fact(peer: Host, what: str, interface: str) -> str | None:
    """A peer's public key (from /etc/wireguard on Linux, hearth's key folder on
    Windows) or its wg-quick config text (Linux only: where last known keys live)."""
    if peer.data.get("hearth_os") == "windows":
        if what != "public":
            return None
        from hearth.facts.windows import FirstLine
        from hearth.operations.windows.wireguard import paths

        return peer.get_fact(FirstLine, path=paths(interface)[1])
    return peer.get_fact(WireGuardPublicKey if what == "public" else WireGuardConfig, interface=interface)


def _read(peer: Host, what: str, interface: str) -> str | None:
    """A WireGuard fact of ``peer`` (``public`` key or ``config`` text), once per phase."""
    slot = (bool(state.is_executing), peer.name, what, interface)
    with _locks.setdefault(slot, BoundedSemaphore()):
        if slot not in _cache or not state.is_executing:
            try:
                _cache[slot] = _fact(peer, what, interface) if _reachable(peer) else None
            except Exception:
                _cache[slot] = None
        return _cache[slot]


def _last_known(hosts: list[Host], peer: str, interface: str) -> str | None:
    """``peer``'s key as the reachable hosts' configs last recorded it (own host first)."""
    for other in hosts:
        text = _read(other, "config", interface)
        key = overlay_configs.peer_keys_in(text or "").get(peer)
        if key:
            return key
    return None


def _peer_keys(inventory: str, name: str, interface: str) -> dict[str, str | None]:
    """Each peer's public key (live, or last known for a peer not reachable this
    run); ``None`` where there is neither. For callers that treat a missing key at
    execution as an error (the Windows tunnel)."""
    keys, _, unknown = peer_keys(inventory, name, interface)
    return {**keys, **dict.fromkeys(unknown)}


def peer_keys(inventory: str, name: str, interface: str) -> tuple[dict[str, str], list[str], list[str]]:
    """(keys, stale, unknown): each peer's public key -- read live from the peer, or
    for a peer not reachable this run, its last known key from the configs of the
    hosts that are (``stale``); ``unknown`` peers have neither (left out this run)."""
    inv = load_cached(inventory)
    by_name = {h.data.get("hearth_host", h.name): h for h in state.inventory}
    me = by_name.get(name)
    readers = ([me] if me is not None else []) + [h for n, h in by_name.items() if n != name]
    given = overlay_configs.inventory_keys(inv)
    keys: dict[str, str] = {}
    stale, unknown = [], []
    for peer in overlay_configs.peer_names(inv, name):
        if peer in given:  # a host hearth does not manage: its key is in the inventory
            keys[peer] = given[peer]
            continue
        host_ = by_name.get(peer)
        live = _read(host_, "public", interface) if host_ is not None and _reachable(host_) else None
        if live:
            keys[peer] = live
            continue
        if host_ is not None and _reachable(host_):
            unknown.append(peer)  # reachable but no key yet (planning a first run)
            continue
        last = _last_known(readers, peer, interface)
        if last:
            keys[peer] = last
            stale.append(peer)
        else:
            unknown.append(peer)
    return keys, stale, unknown


def _report_asleep(inv_path: str, stale: list[str], unknown: list[str]) -> None:
    """One line per host that is not configured this run (printed once per run)."""
    inv = load_cached(inv_path)
    for peer in [*stale, *unknown]:
        if peer in _reported:
            continue
        _reported.add(peer)
        state_ = "asleep" if inv.hosts[peer].sleep.sleeps else "unreachable"
        keeps = ("its peers keep its last known key" if peer in stale
                 else "no key known for it yet: its peers leave it out until it is configured")
        logger.warning(f"hearth: {peer} is {state_}: not configured this run ({keeps})")


def syncconf_command(interface: str) -> StringCommand:
    """``wg syncconf`` from the config on disk, private key included: syncconf sets the
    interface to exactly its input, and an input without ``PrivateKey`` REMOVES the
    running key (the config holds none; ``PostUp`` loads it). awk reads the key file
    and prints it into a pipe: never on a command line, never on disk."""
    private, _ = key_paths(interface)
    add_key = "NR == FNR { key = $0; next } { print } /^\\[Interface\\]/ { print \"PrivateKey = \" key }"
    inner = f"wg syncconf {interface} <(wg-quick strip {interface} | awk {shlex.quote(add_key)} {private} -)"
    return StringCommand("bash", "-c", shlex.quote(inner))


@operation()
def mesh_config(inventory: str, host_name: str):
    """
    Write ``/etc/wireguard/<interface>.conf`` of inventory host ``host_name`` with
    every peer's key, and apply it without dropping tunnels.

    Peers' public keys are facts read from the peers themselves when this
    operation runs. Run :func:`keypair` on every host first (an earlier
    operation): pyinfra executes an operation on all hosts before the next one, so
    at execution time every key exists even on a first run. A peer that is not
    reachable this run (asleep, off, left out by ``--limit``) keeps its last known
    key, read from the configs of the hosts that are; a peer never configured
    before is left out (one line says so) and joins on the next run that reaches
    it. A reachable peer without a key at execution is an error.

    When only ``[Peer]`` sections changed and the interface is up, the change is
    applied with ``wg syncconf`` (tunnels stay up); a changed ``[Interface]``
    restarts ``wg-quick@<interface>``.

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
    keys, stale, unknown = peer_keys(inventory, host_name, iface)
    if state.is_executing:
        by_name = {h.data.get("hearth_host", h.name): h for h in state.inventory}
        broken = sorted(p for p in unknown if p in by_name and _reachable(by_name[p]))
        if broken:
            raise OperationError(f"no WireGuard public key on peer(s) {', '.join(broken)} "
                                 "(key pair step failed there?)")
        _report_asleep(inventory, stale, unknown)
    config = overlay_configs.wg_config(inv, host_name, keys, omit_unknown=state.is_executing)
    text = config.render()
    commands = list(files.put._inner(
        src=StringIO(text), dest=config.dest, mode=config.mode, user=config.user, group=config.group,
    ))
    if not any(isinstance(c, FileUploadCommand) for c in commands):
        yield from commands  # at most a mode or owner fix
        return
    current = host.get_fact(WireGuardConfig, interface=iface)  # before the upload below
    running = host.get_fact(LivePublicKey, interface=iface)
    yield from commands
    if current is None or not running:
        return  # not up yet: starting it (a later step) reads the new file
    if overlay_configs.interface_section(current) != overlay_configs.interface_section(text):
        yield StringCommand(f"systemctl try-restart wg-quick@{iface}")
    else:  # peers only: no restart, every tunnel stays up
        yield syncconf_command(iface)


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
