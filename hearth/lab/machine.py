"""One lab machine behind one interface, whatever kind it is.

Kinds (``hosts.<name>.lab.kind`` in the inventory; the architecture is the host's
``arch``), one module each:

* ``container`` (:mod:`hearth.lab.container`): systemd-nspawn on an overlay root;
  amd64 natively, arm64 emulated through qemu-user-static and binfmt_misc;
* ``vm`` (:mod:`hearth.lab.vm`): a QEMU i440fx VM with Debian's kernel, its own disk,
  real S3 suspend, KVM when it works and TCG otherwise.

The power controller, `hearth lab` and the tests hold a :class:`Machine` from
:func:`get` and never ask which kind it is. Every machine directory has::

    upper/ work/ rootfs/   overlay over the shared, read-only image; the machine's
                           identity (hostname, machine-id, host key, lab key) is
                           written here (a VM's disk is made from it once)
    boot.json              when it last booted or woke and how long until sshd answered
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path

from hearth.lab import keys
from hearth.lab.sh import LabError, ok, run
from hearth.lab.state import LabRecord, MachineRecord

POWER_ON_REQUEST = "power-on-requested"
APT_PROXY_CONF = """\
// hearth lab: the lab LAN reaches the apt registry only through the lab's apt proxy.
Acquire::http::Proxy "http://{host}:{port}/";
Acquire::http::Proxy::{host} "DIRECT";
"""


class Machine(ABC):
    """A lab machine: power on/off, suspend/wake, state, console log."""

    kind = "?"

    def __init__(self, record: MachineRecord) -> None:
        self.record = record

    @property
    def name(self) -> str:
        """The inventory's host name."""
        return self.record.name

    @property
    def path(self) -> Path:
        """The machine's directory."""
        return self.record.path

    @abstractmethod
    def create(self, lab: LabRecord, pubkey: str, apt_proxy_port: int) -> str:
        """Make the machine (idempotent); return its SSH host public key (``type base64``)."""

    @abstractmethod
    def power_on(self) -> subprocess.Popen[bytes] | None:
        """Boot it as a child of the caller (the lab daemon); None if it was on."""

    @abstractmethod
    def power_off(self, *, timeout: float = 20.0, hard: bool = False) -> None:
        """Orderly shutdown (``hard``: pull the plug), then a kill after ``timeout``."""

    @abstractmethod
    def pid(self) -> int | None:
        """The process that is the machine (nspawn, qemu) while it exists, else None."""

    @abstractmethod
    def state(self) -> str:
        """``on``, ``asleep`` (suspended) or ``off``."""

    @abstractmethod
    def wake(self) -> subprocess.Popen[bytes] | None:
        """What a magic packet does: resume it if asleep, boot it if off (child or None)."""

    @abstractmethod
    def console_log(self, lines: int = 30) -> str:
        """The tail of the machine's console (boot messages, login prompt)."""

    def suspend_requested(self) -> bool:
        """The machine asked the lab to act on its `systemctl suspend` (containers)."""
        return False

    def suspend(self) -> None:
        """Act on that request (containers: power off, held ``asleep``); VMs suspend themselves."""
        return None

    def describe(self) -> dict[str, str]:
        """What `hearth lab status` shows about the kind (VMs add the accelerator)."""
        return {"kind": self.kind, "arch": self.record.arch}

    def host_key(self) -> str:
        """The host public key made by :meth:`create`."""
        return keys.host_key_line(self.path / "upper/etc/ssh")

    def destroy(self) -> None:
        """Power off for good and delete everything it was."""
        self.power_off(hard=True)
        if is_mounted(self.path / "rootfs"):
            run(["umount", str(self.path / "rootfs")])
        run(["rm", "-rf", "--one-file-system", str(self.path)])

    def mark_booted(self, *, resumed: bool = False) -> None:
        """Start timing a boot (or a resume) until sshd answers."""
        _write_boot(self.record, {"booted_at": time.time(), "sshd_s": None,
                                  "resumed": resumed})  # fmt: skip


def get(m: MachineRecord) -> Machine:
    """The machine of the record's kind."""
    if m.kind == "vm":
        from hearth.lab.vm import VirtualMachine

        return VirtualMachine(m)
    if m.kind == "container":
        from hearth.lab.container import Container

        return Container(m)
    raise LabError(f"{m.name}: unknown lab machine kind {m.kind!r} (container or vm)")


def is_mounted(path: Path) -> bool:
    """True when ``path`` is a mount point."""
    return ok(["mountpoint", "-q", str(path)])


def prepare_root(m: MachineRecord, lab: LabRecord, pubkey: str, apt_proxy_port: int) -> Path:
    """Mount the machine's overlay root and give it its identity (idempotent); the root."""
    d = m.path
    for sub in ("upper", "work", "rootfs"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    if not is_mounted(d / "rootfs"):
        opts = f"lowerdir={m.base},upperdir={d / 'upper'},workdir={d / 'work'}"
        run(["mount", "-t", "overlay", "overlay", "-o", opts, str(d / "rootfs")])
    root = d / "rootfs"
    (root / "etc/hostname").write_text(f"{m.name}\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{m.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    mid = root / "etc/machine-id"
    if not mid.read_text().strip():
        mid.write_text(secrets.token_hex(16) + "\n")
    (root / "etc/apt/apt.conf.d/01hearth-lab-proxy").write_text(
        APT_PROXY_CONF.format(host=lab.host_ip, port=apt_proxy_port)
    )
    _authorize(root, lab.ssh_user, pubkey)
    keys.make_host_key(root / "etc/ssh")
    return root


def _authorize(root: Path, user: str, pubkey: str) -> None:
    uid = gid = None
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            uid, gid, home = int(f[2]), int(f[3]), f[5]
            break
    if uid is None or gid is None:
        raise LabError(f"base image has no user {user!r}; rebuild the image")
    ssh_dir = root / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(pubkey + "\n")
    for p in (ssh_dir, auth):
        os.chown(p, uid, gid)
    auth.chmod(0o600)


def live_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process runs (not a zombie) with ``marker`` in its argv."""
    try:
        value = int(pidfile.read_text())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{value}/stat").read_text()
    except (OSError, ValueError):
        return None
    if marker.encode() not in cmdline or stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return value


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        data = path.read_bytes()[-65536:]
    except OSError:
        return ""
    text = data.decode(errors="replace").replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])


# Module-level shorthands for callers holding a record.


def pid(m: MachineRecord) -> int | None:
    """See :meth:`Machine.pid`."""
    return get(m).pid()


def power_state(m: MachineRecord) -> str:
    """See :meth:`Machine.state`."""
    return get(m).state()


def request_power_on(m: MachineRecord, *, timeout: float = 15.0) -> None:
    """Ask the lab daemon to power ``m`` on or wake it (it owns the machine processes)."""
    mach = get(m)
    if mach.state() == "on":
        return
    (m.path / POWER_ON_REQUEST).write_text(f"{time.time():.3f}\n")
    deadline = time.monotonic() + timeout
    while mach.state() != "on":
        if time.monotonic() > deadline:
            raise LabError(
                f"{m.name}: not powered on within {timeout}s; the lab daemon's log says why\n"
                + mach.console_log()
            )
        time.sleep(0.1)


def sshd_banner(address: str, port: int, *, wait: float = 15.0) -> bool:
    """True when sshd at ``address`` sends its banner within ``wait`` s of one connection.

    One connection at a time, held until the banner comes: every accepted connection
    costs sshd a fork and re-exec, which a slow (emulated) machine must not pile up.
    """
    try:
        with socket.create_connection((address, port), timeout=1) as s:
            s.settimeout(wait)
            return s.recv(16).startswith(b"SSH-")
    except OSError:
        return False


def wait_sshd(m: MachineRecord, port: int, *, timeout: float = 60.0) -> float:
    """Wait until sshd on ``m`` sends its banner; record and return seconds since boot."""
    deadline = time.monotonic() + timeout
    while not sshd_banner(m.address, port, wait=max(0.5, min(15.0, deadline - time.monotonic()))):
        if time.monotonic() > deadline:
            mach = get(m)
            raise LabError(
                f"{m.name} ({mach.kind}): sshd on {m.address}:{port} not up after {timeout}s; "
                f"its console ends:\n{mach.console_log()}"
            )
        time.sleep(0.05)
    boot = read_boot(m)
    if boot.get("sshd_s") is not None:  # this boot was measured already
        return float(boot["sshd_s"] or 0)
    seconds = round(time.time() - float(boot.get("booted_at") or time.time()), 2)
    _write_boot(m, {**boot, "sshd_s": seconds})
    return seconds


def boot_timeout(m: MachineRecord) -> float:
    """How long a boot of ``m`` may take to reach sshd (emulated machines are slower).

    A bound for a machine that will not boot, not a measure of one that does: a container
    reaches sshd in 0.3-2 s, but a lab beside other labs on a busy machine has seen one
    take over 60 s, so the bounds are generous (issue 10: waits by readiness).
    """
    if m.kind == "vm":
        return 600.0
    return 360.0 if m.arch != "amd64" else 180.0


def read_boot(m: MachineRecord) -> dict[str, float | None]:
    """The last boot's record (``booted_at``, ``sshd_s``, ``resumed``), or {}."""
    try:
        return json.loads((m.path / "boot.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_boot(m: MachineRecord, data: dict[str, float | None]) -> None:
    """Replace the boot record atomically.

    Two processes write it at once (the lab daemon waking a machine, `hearth lab up`
    waiting for the same sshd), so each writes through its own temporary file.
    """
    fd, tmp = tempfile.mkstemp(dir=m.path, prefix="boot.json.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data))
    os.replace(tmp, m.path / "boot.json")
