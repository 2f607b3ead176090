"""`hearth wake`: wake the inventory's sleeping hosts before a deploy reaches for them.

pyinfra connects to every host first; a box that sleeps most of the day would fail
the run. This sends each sleeper (Linux or Windows) one magic packet (the `wakeonlan` library, to the
LAN's broadcast address, UDP 9) and waits until its SSH port answers.
"""

from __future__ import annotations

import argparse
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import wakeonlan

from hearth.commands import load_or_report
from hearth.inventory import Inventory


def ssh_answers(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wake_host(inv: Inventory, name: str, deadline_s: float) -> tuple[str, float | None]:
    """One magic packet, then wait for SSH; (name, seconds) or (name, None) on timeout."""
    host = inv.hosts[name]
    port = host.ssh_port or inv.ssh.port
    start = time.monotonic()
    if ssh_answers(host.address, port):
        return name, 0.0
    assert host.mac is not None  # validation: a sleeper always has a MAC
    wakeonlan.send_magic_packet(host.mac, ip_address=str(inv.lan.cidr.broadcast_address), port=9)
    while time.monotonic() - start < deadline_s:
        if ssh_answers(host.address, port):
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
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        results = list(pool.map(lambda n: wake_host(inv, n, args.timeout), names))
    for name, seconds in results:
        print(f"{name}: " + ("awake" if seconds == 0.0 else
                             f"up after {seconds:.1f}s" if seconds is not None else
                             f"no SSH within {args.timeout:g}s of the magic packet"))
    return 0 if all(seconds is not None for _, seconds in results) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("wake", help="wake the inventory's sleeping hosts (before a deploy)")
    p.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    p.add_argument("hosts", nargs="*", help="hosts to wake (default: every host that sleeps)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for SSH per host")
    p.set_defaults(func=cmd_wake)
