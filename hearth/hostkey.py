"""SSH host keys: loud when one changed, replaced only on purpose.

Strict host-key checking stays on everywhere (pyinfra, testinfra). When a box's key
changes -- a Windows feature update resets the OpenSSH host key (seed 000) -- the
deploy stops for that host with a message naming it and both fingerprints, and
`hearth hostkey accept INVENTORY HOST` is the one explicit way to take the new key:
it shows the known and the offered fingerprint first, and replaces the known_hosts
line only after a yes (or ``--expect`` matching the fingerprint recorded on the box).

    hearth hostkey check  inventory/<lab>.yml [HOST...]
    hearth hostkey accept inventory/<lab>.yml HOST [--expect SHA256:...] [--yes]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from paramiko.hostkeys import HostKeyEntry, HostKeys

from hearth.commands import inventory_path, load_or_report
from hearth.inventory import Inventory

log = logging.getLogger("pyinfra")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint (what ``ssh-keygen -l`` prints)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_path(inv: Inventory) -> Path:
    return Path(inv.ssh.known_hosts or "~/.ssh/known_hosts").expanduser()


def host_entry(address: str, port: int) -> str:
    """How known_hosts names a host: ``addr``, or ``[addr]:port`` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def known_keys(path: Path, entry: str) -> dict[str, paramiko.PKey]:
    """key type -> key known for ``entry`` (plain or hashed lines)."""
    keys = HostKeys()
    if path.exists():
        keys.load(str(path))
    return dict(keys.lookup(entry) or {})


def offered_key(address: str, port: int, key_types: list[str] | None = None,
                timeout: float = 10.0) -> paramiko.PKey:
    """The host key the SSH server at address:port presents (of ``key_types`` if given).
    Only the key exchange runs: nothing is authenticated, nothing is trusted."""
    sock = socket.create_connection((address, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        if key_types:
            options = transport.get_security_options()
            wanted = [t for t in key_types if t in options.key_types]
            if wanted:
                options.key_types = wanted
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()


@dataclass(frozen=True)
class Comparison:
    host: str
    entry: str
    known: dict[str, str]  # key type -> fingerprint
    offered_type: str
    offered: str

    @property
    def changed(self) -> bool:
        return bool(self.known) and self.known.get(self.offered_type) != self.offered

    def describe(self) -> str:
        known = ", ".join(f"{t} {fp}" for t, fp in self.known.items()) or "none"
        return f"{self.host} ({self.entry}): known {known}; offered {self.offered_type} {self.offered}"


def compare(inv: Inventory, name: str, path: Path, timeout: float = 10.0) -> Comparison:
    host = inv.hosts[name]
    port = host.ssh_port or inv.ssh.port
    entry = host_entry(host.address, port)
    known = known_keys(path, entry)
    key = offered_key(host.address, port, list(known) or None, timeout)
    return Comparison(name, entry, {t: fingerprint(k) for t, k in known.items()}, key.get_name(), fingerprint(key))


def replace_line(path: Path, entry: str, key: paramiko.PKey) -> None:
    """Drop every known_hosts line for ``entry`` (plain or hashed) and add the new key.
    Other lines, comments included, stay as they are; the file keeps its mode."""
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    kept = []
    for line in lines:
        parsed = HostKeyEntry.from_line(line) if line.strip() and not line.lstrip().startswith("#") else None
        if parsed and any(_matches(name, entry) for name in parsed.hostnames):
            continue
        kept.append(line if line.endswith("\n") else line + "\n")
    kept.append(f"{entry} {key.get_name()} {key.get_base64()}\n")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".known_hosts.")
    with os.fdopen(fd, "w") as out:
        out.writelines(kept)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _matches(name: str, entry: str) -> bool:
    if name.startswith("|1|"):
        return HostKeys.hash_host(entry, name) == name
    return name == entry


# --- the deploy: a changed key stops the host with both fingerprints ---------------------

_ADDRESSES: dict[str, tuple[str, str, Path]] = {}  # address -> (inventory, host name, known_hosts)


def guard_deploy(inv: Inventory, inventory: Path) -> None:
    """Make pyinfra's SSH connector say which host's key changed, with both fingerprints.

    pyinfra already refuses a changed key (strict checking) but names neither key; this
    wraps its client's connect to log the host, the known and the offered fingerprint,
    and the command that accepts the new key. The host then fails as before.
    """
    from pyinfra.connectors.sshuserclient import client

    for name, host in inv.hosts.items():
        _ADDRESSES[host.address] = (str(inventory), name, known_hosts_path(inv))
    if getattr(client.SSHClient.connect, "_hearth_guard", False):
        return
    original = client.SSHClient.connect

    def connect(self: Any, hostname: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, hostname, *args, **kwargs)
        except paramiko.BadHostKeyException as exc:
            log.error(changed_key_message(hostname, exc.expected_key, exc.key))
            raise

    connect._hearth_guard = True  # type: ignore[attr-defined]
    client.SSHClient.connect = connect  # type: ignore[method-assign]


def changed_key_message(address: str, known: paramiko.PKey, offered: paramiko.PKey) -> str:
    inventory, name, path = _ADDRESSES.get(address, ("INVENTORY", address, Path("~/.ssh/known_hosts")))
    return (f"hearth: the SSH host key of {name} ({address}) changed: known {known.get_name()} "
            f"{fingerprint(known)} ({path}), offered {offered.get_name()} {fingerprint(offered)}. "
            f"Strict host-key checking refuses it. If you expect the change (a Windows feature update "
            f"resets the key), compare it with the box and run: hearth hostkey accept {inventory} {name}")


# --- commands ---------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    path = known_hosts_path(inv)
    status = 0
    for name in args.hosts or list(inv.hosts):
        if name not in inv.hosts:
            print(f"{name}: not a host of {args.inventory}")
            return 2
        try:
            result = compare(inv, name, path, args.timeout)
        except (OSError, paramiko.SSHException) as exc:
            print(f"{name}: no answer ({exc.__class__.__name__}: {exc}); asleep?")
            continue
        if result.changed:
            status = 1
            print(f"CHANGED {result.describe()}\n  if expected: hearth hostkey accept {args.inventory} {name}")
        elif not result.known:
            print(f"unknown {result.describe()}\n  record it: hearth hostkey accept {args.inventory} {name}")
        else:
            print(f"ok      {name} ({result.entry}): {result.offered_type} {result.offered}")
    return status


def cmd_accept(args: argparse.Namespace) -> int:
    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    if args.host not in inv.hosts:
        print(f"hearth hostkey: no host {args.host} in {args.inventory}", file=sys.stderr)
        return 2
    path = known_hosts_path(inv)
    host = inv.hosts[args.host]
    port = host.ssh_port or inv.ssh.port
    entry = host_entry(host.address, port)
    known = known_keys(path, entry)
    try:
        key = offered_key(host.address, port, list(known) or None, args.timeout)
    except (OSError, paramiko.SSHException) as exc:
        print(f"hearth hostkey: {args.host} ({entry}) does not answer: {exc}", file=sys.stderr)
        return 1
    offered = fingerprint(key)
    print(f"{args.host} ({entry}) in {path}")
    for key_type, old in known.items():
        print(f"  known:   {key_type} {fingerprint(old)}")
    if not known:
        print("  known:   none")
    print(f"  offered: {key.get_name()} {offered}")
    if known.get(key.get_name()) is not None and fingerprint(known[key.get_name()]) == offered:
        print("The offered key is the known key: nothing to do.")
        return 0
    if args.expect and args.expect != offered:
        print(f"hearth hostkey: the offered key is not {args.expect} (the fingerprint you recorded on the box): "
              "nothing changed", file=sys.stderr)
        return 1
    if not (args.yes or args.expect):
        answer = input(f"Replace the known key of {entry} with {offered}? Type yes: ") if sys.stdin.isatty() else ""
        if answer.strip() != "yes":
            print("Nothing changed.")
            return 1
    replace_line(path, entry, key)
    print(f"{path}: {entry} now has {key.get_name()} {offered}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hostkey", help="compare SSH host keys with known_hosts; accept a changed one")
    sub = parser.add_subparsers(dest="hostkey_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="compare each host's offered key with known_hosts")
    check.add_argument("inventory", type=lambda v: str(inventory_path(v)))
    check.add_argument("hosts", nargs="*", help="hosts (default: all)")
    check.add_argument("--timeout", type=float, default=10.0)
    check.set_defaults(func=cmd_check)
    accept = sub.add_parser("accept", help="show the known and the offered key, then take the offered one")
    accept.add_argument("inventory", type=lambda v: str(inventory_path(v)))
    accept.add_argument("host")
    accept.add_argument("--expect", metavar="SHA256:...", help="the fingerprint recorded on the box; "
                        "accept only if the offered key has it (no prompt)")
    accept.add_argument("--yes", action="store_true", help="do not ask (after reading both fingerprints)")
    accept.add_argument("--timeout", type=float, default=10.0)
    accept.set_defaults(func=cmd_accept)
