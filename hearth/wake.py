"""`hearth wake`: wake the inventory's sleeping hosts before a deploy reaches for them.

pyinfra connects to every host first; a box that sleeps most of the day would fail
the run. This sends each sleeper (Linux or Windows) one magic packet (the `wakeonlan` library, to the
LAN's broadcast address, UDP 9) and waits until the deploy can really use it: its SSH
port answers and, on a Linux host, a login as the inventory's automation user works.
sshd starts before the boot lets anyone but root in (until systemd-user-sessions runs,
``/run/nologin`` makes pam_nologin refuse the login), so a deploy started on the first
answer of the port can fail with "Authentication failed": that refusal (pam_nologin's
"System is booting up") and a dropped connection are waited out, up to the timeout.
What waiting will not fix is an error at once, naming the host and quoting ssh's last
lines: a changed host key (never retried; strict checking stays on) and a login the
awake host refuses (a key it does not take, a refused user, an operator's /etc/nologin),
which gets no magic packet.
"""

from __future__ import annotations

import argparse
import re
import shlex
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import wakeonlan

from hearth.commands import load_or_report
from hearth.hostkey import host_entry, known_hosts_path
from hearth.inventory import Inventory
from hearth.plan_facts import ssh_argv


def ssh_answers(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


HOST_KEY_REFUSED = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")
# What ssh prints while a login fails only because the host is still booting: pam_nologin's
# text for systemd's /run/nologin (the banner sshd sends before it closes the connection).
BOOTING = ("System is booting up", "not permitted to log in yet")
# What ssh prints when the host is up and refuses the login for a reason waiting will not fix.
REFUSED = ("Permission denied", "Too many authentication failures", "Access denied", "account has expired",
           "not permitted to log in", "currently not available")
# Lines ssh itself prints around a connection (not sent by the server).
CLIENT_LINES = ("Warning:", "**", "kex_exchange_identification:", "banner exchange:", "ssh:")
CLOSED = re.compile(r"^Connection closed by \S+ port \d+$")


class WakeError(Exception):
    """A host that no deploy can log in to: what ssh said, and what to do."""


class HostKeyMismatch(WakeError):
    """The host answered with a host key that known_hosts does not hold for it (never retried)."""


class LoginRefused(WakeError):
    """The host is awake (its port answers) but refuses the automation user's login."""


class NoLogin(WakeError):
    """No login within the deadline (asleep, or still booting)."""


State = Literal["ok", "wait", "refused", "host key"]


@dataclass(frozen=True)
class Login:
    """One login attempt: ``ok``, ``wait`` (waiting may fix it), ``refused`` or ``host key``; ssh's last lines."""

    state: State
    said: str = ""


def last_lines(stderr: str, count: int = 3, width: int = 200) -> str:
    """ssh's last ``count`` lines, each cut to ``width`` (ssh prints no secrets with BatchMode)."""
    lines = [line.strip()[:width] for line in stderr.splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _closed_after_server_text(stderr: str) -> bool:
    """The server sent text (a PAM account refusal such as /etc/nologin), then closed the connection."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines or not CLOSED.match(lines[-1]):
        return False
    return any(not line.startswith(CLIENT_LINES) for line in lines[:-1])


def classify(returncode: int, stderr: str) -> State:
    """``ok``, ``host key``, ``wait`` (booting, a connection dropped: waiting may fix it) or ``refused``."""
    if returncode == 0:
        return "ok"
    if any(marker in stderr for marker in HOST_KEY_REFUSED):
        return "host key"
    if any(marker in stderr for marker in BOOTING):
        return "wait"
    if returncode != 255 or any(m in stderr for m in REFUSED) or _closed_after_server_text(stderr):
        return "refused"  # 255 is ssh's own failure; another status is the remote shell's
    return "wait"


def attempt(argv: list[str], timeout: float = 30.0) -> tuple[State, str]:
    """Run one ssh login (``argv``: ssh running ``true``): (:func:`classify`'s state, ssh's stderr).

    No answer within ``timeout`` seconds is ``wait``. Used by :func:`try_login` and by the
    lab's own login wait (``hearth.lab.power_cli``), so both read ssh the same way.
    """
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "wait", f"no answer within {timeout:g}s"
    return classify(proc.returncode, proc.stderr), proc.stderr


def try_login(inv: Inventory, name: str) -> Login:
    """Whether the deploy's login works now (Linux hosts; a Windows host: its port answering)."""
    if inv.hosts[name].os != "linux":
        return Login("ok")
    state, stderr = attempt(ssh_argv(inv, name, "true"))
    return Login(state, last_lines(stderr))


def _where(inv: Inventory, name: str) -> tuple[str, str]:
    """(``name (address)``, the host's known_hosts entry: ``address`` or ``[address]:port``)."""
    host = inv.hosts[name]
    return f"{name} ({host.address})", host_entry(host.address, host.ssh_port or inv.ssh.port)


def host_key_mismatch(inv: Inventory, name: str, said: str, inventory: str = "INVENTORY") -> HostKeyMismatch:
    """The error for a changed host key: the host, ssh's words, how to check and take the new key."""
    where, entry = _where(inv, name)
    path = known_hosts_path(inv)
    return HostKeyMismatch(
        f"{where}: its SSH host key is not the one {path} holds for {entry}\n"
        f"  ssh said: {said}\n"
        f"  Strict host-key checking refuses it; hearth wake does not retry.\n"
        f"  If the machine was reinstalled or its key regenerated: check on its console that it is {name},\n"
        f"  compare fingerprints (hearth hostkey check {inventory} {name}), then take the new key:\n"
        f"    hearth hostkey accept {inventory} {name}\n"
        f"  (or drop the old one: ssh-keygen -R {shlex.quote(entry)} -f {shlex.quote(str(path))}).\n"
        f"  If nothing changed on the machine, something else answers at {entry}: do not log in.")


def _failure(inv: Inventory, name: str, login: Login, inventory: str) -> WakeError:
    if login.state == "host key":
        return host_key_mismatch(inv, name, login.said, inventory)
    where, _ = _where(inv, name)
    user = inv.hosts[name].ssh_user or inv.ssh.user
    return LoginRefused(f"{where} is awake (its SSH port answers) but refuses the login of {user}: "
                        f"waiting will not fix it\n  ssh said: {login.said or 'nothing'}")


def ready(inv: Inventory, name: str, port: int, inventory: str) -> Login:
    """The port, then (when it answers) a login; raises :class:`WakeError` for what waiting cannot fix."""
    if not ssh_answers(inv.hosts[name].address, port):
        return Login("wait", f"port {port} does not answer")
    login = try_login(inv, name)
    if login.state in ("host key", "refused"):
        raise _failure(inv, name, login, inventory)
    return login


def wake_host(inv: Inventory, name: str, deadline_s: float, inventory: str = "INVENTORY") -> tuple[str, float]:
    """One magic packet unless already awake, then wait until a deploy can log in; (name, seconds).

    Raises :class:`WakeError`: at once for a changed host key or a refused login (no
    packet to a host that answers and refuses), at the deadline while it is asleep or booting.
    ``inventory``: the file named in the advice.
    """
    host = inv.hosts[name]
    port = host.ssh_port or inv.ssh.port
    start = time.monotonic()
    login = ready(inv, name, port, inventory)
    if login.state == "ok":
        return name, 0.0
    assert host.mac is not None  # validation: a sleeper always has a MAC
    wakeonlan.send_magic_packet(host.mac, ip_address=str(inv.lan.cidr.broadcast_address), port=9)
    while time.monotonic() - start < deadline_s:
        time.sleep(0.2)
        login = ready(inv, name, port, inventory)
        if login.state == "ok":
            return name, time.monotonic() - start
    raise NoLogin(f"{_where(inv, name)[0]}: no SSH login within {deadline_s:g}s of the magic packet\n"
                  f"  last: {login.said}")


def outcome(inv: Inventory, name: str, deadline_s: float, inventory: str) -> tuple[bool, str]:
    """(up, the line to print) for one host."""
    try:
        _, seconds = wake_host(inv, name, deadline_s, inventory)
    except WakeError as exc:
        return False, str(exc)
    return True, f"{name}: " + ("awake" if seconds == 0.0 else f"up after {seconds:.1f}s")


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
        results = list(pool.map(lambda n: outcome(inv, n, args.timeout, args.inventory), names))
    for _, line in results:
        print(line)
    return 0 if all(up for up, _ in results) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("wake", help="wake the inventory's sleeping hosts (before a deploy)")
    p.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    p.add_argument("hosts", nargs="*", help="hosts to wake (default: every host that sleeps)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for SSH per host")
    p.set_defaults(func=cmd_wake)
