"""`hearth wake`: wake the inventory's sleeping hosts before a deploy reaches for them.

pyinfra connects to every host first; a box that sleeps most of the day would fail
the run. This sends each sleeper (Linux or Windows) one magic packet (the `wakeonlan` library, to the
LAN's broadcast address, UDP 9) and waits until the deploy can really use it: its SSH
port answers and, on a Linux host, a login as the inventory's automation user works.
sshd starts before the boot lets anyone but root in (until systemd-user-sessions runs,
``/run/nologin`` makes pam_nologin refuse the login), so a deploy started on the first
answer of the port can fail with "Authentication failed". A changed host key is an
error at once, never waited out.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import wakeonlan

from hearth.commands import load_or_report
from hearth.inventory import Inventory
from hearth.plan_facts import ssh_argv


def ssh_answers(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


HOST_KEY_REFUSED = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")


class HostKeyMismatch(Exception):
    """The host answered with a host key that known_hosts does not hold for it."""


def login_works(inv: Inventory, name: str) -> bool:
    """Whether the deploy's login works now (Linux hosts; a Windows host: its port answering).

    Raises :class:`HostKeyMismatch` when ssh refuses the host's key.
    """
    if inv.hosts[name].os != "linux":
        return True
    try:
        proc = subprocess.run(ssh_argv(inv, name, "true"), capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False
    if proc.returncode != 0 and any(marker in proc.stderr for marker in HOST_KEY_REFUSED):
        raise HostKeyMismatch(proc.stderr.strip().splitlines()[-1])
    return proc.returncode == 0


def wake_host(inv: Inventory, name: str, deadline_s: float) -> tuple[str, float | None]:
    """One magic packet, then wait until a deploy can log in; (name, seconds) or (name, None) on timeout."""
    host = inv.hosts[name]
    port = host.ssh_port or inv.ssh.port
    start = time.monotonic()
    if ssh_answers(host.address, port) and login_works(inv, name):
        return name, 0.0
    assert host.mac is not None  # validation: a sleeper always has a MAC
    wakeonlan.send_magic_packet(host.mac, ip_address=str(inv.lan.cidr.broadcast_address), port=9)
    while time.monotonic() - start < deadline_s:
        if ssh_answers(host.address, port) and login_works(inv, name):
            return name, time.monotonic() - start
        time.sleep(0.2)
    return name, None


def cmd_wake(args: argparse.Namespace) -> int:
    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    names = args.hosts or [n for n, h in inv.hosts.items() if h.sleep.sleeps]
    unknown = [n for n in names if n not in inv.hosts or not inv.hosts[n].mac]
    if unknown:
        print(f"hearth wake: not a host with a MAC in {args.inventory}: {', '.join(unknown)}")
        return 2
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            results = list(pool.map(lambda n: wake_host(inv, n, args.timeout), names))
    except HostKeyMismatch as exc:
        print(f"hearth wake: refused: {exc}")
        return 1
    for name, seconds in results:
        print(f"{name}: " + ("awake" if seconds == 0.0 else
                             f"up after {seconds:.1f}s" if seconds is not None else
                             f"no SSH login within {args.timeout:g}s of the magic packet"))
    return 0 if all(seconds is not None for _, seconds in results) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("wake", help="wake the inventory's sleeping hosts (before a deploy)")
    p.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    p.add_argument("hosts", nargs="*", help="hosts to wake (default: every host that sleeps)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for SSH per host")
    p.set_defaults(func=cmd_wake)
