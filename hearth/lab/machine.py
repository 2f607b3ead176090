"""One lab machine: an overlay root filesystem and a booted systemd-nspawn.

Layout of a machine directory::

    upper/ work/   overlay layers over the shared, read-only base image
    rootfs/        the overlay mount nspawn boots (persists across sleep/wake)
    ctl/           bind-mounted at /run/hearth-lab (suspend requests land here)
    power-state    stand-in for /sys/power/state so logind allows `systemctl suspend`
    nspawn.pid     nspawn's pid while powered on; nspawn.log its output
    asleep         present while the lab holds the machine powered off after a suspend
    boot.json      when it last booted and how long until sshd answered
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
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


def is_mounted(path: Path) -> bool:
    """True when ``path`` is a mount point."""
    return ok(["mountpoint", "-q", str(path)])


def create(m: MachineRecord, lab: LabRecord, pubkey: str, apt_proxy_port: int) -> str:
    """Make the machine's root filesystem (idempotent); return its host public key."""
    d = m.path
    for sub in ("upper", "work", "rootfs", "ctl"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "power-state").write_text("freeze mem\n")
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
    return keys.make_host_key(root / "etc/ssh")


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


def nspawn_argv(m: MachineRecord) -> list[str]:
    """The systemd-nspawn command line that boots ``m``."""
    d = m.path
    return [
        "systemd-nspawn", "--boot", f"--machine={m.name}", f"--directory={d / 'rootfs'}",
        "--register=no", "--keep-unit", "--console=passive", "--link-journal=no",
        "--resolv-conf=off", "--timezone=off", "--settings=no",
        f"--network-namespace-path=/run/netns/{m.netns}",
        "--capability=CAP_NET_ADMIN", "--bind=/dev/net/tun",
        f"--bind={d / 'power-state'}:/sys/power/state", f"--bind={d / 'ctl'}:/run/hearth-lab",
    ]  # fmt: skip


def pid(m: MachineRecord) -> int | None:
    """nspawn's pid while the machine is powered on, else None."""
    try:
        value = int((m.path / "nspawn.pid").read_text())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{value}/stat").read_text()
    except (OSError, ValueError):
        return None
    if f"--machine={m.name}".encode() not in cmdline:
        return None
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return value


def power_state(m: MachineRecord) -> str:
    """``on``, ``asleep`` (held off by the lab after a suspend) or ``off``."""
    if pid(m) is not None:
        return "on"
    return "asleep" if (m.path / "asleep").exists() else "off"


def start(m: MachineRecord) -> subprocess.Popen[bytes] | None:
    """Power the machine on as a child of the caller (the lab daemon); None if it was on."""
    if pid(m) is not None:
        return None
    for stale in ("asleep", "ctl/suspend-requested", "nspawn.pid"):
        (m.path / stale).unlink(missing_ok=True)
    # /proc/sys is read-only in nspawn; net.* sysctls are per network namespace, so
    # the machine may set its own, as nspawn allows for --private-network machines.
    env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
    # The boot record first: whoever sees the new pid must never read the last boot's record.
    _write_boot(m, {"booted_at": time.time(), "sshd_s": None})
    with open(m.path / "nspawn.log", "ab") as log:
        proc = subprocess.Popen(
            nspawn_argv(m), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )  # fmt: skip
    (m.path / "nspawn.pid").write_text(f"{proc.pid}\n")
    return proc


def request_power_on(m: MachineRecord, *, timeout: float = 15.0) -> None:
    """Ask the lab daemon to power ``m`` on (it owns and reaps the nspawn processes)."""
    if pid(m) is not None:
        return
    (m.path / POWER_ON_REQUEST).write_text(f"{time.time():.3f}\n")
    deadline = time.monotonic() + timeout
    while pid(m) is None:
        if time.monotonic() > deadline:
            raise LabError(
                f"{m.name}: not powered on within {timeout}s; see {m.path / 'nspawn.log'} "
                "and the lab daemon's log"
            )
        time.sleep(0.05)


def stop(m: MachineRecord, *, timeout: float = 20.0) -> None:
    """Power the machine off: orderly shutdown, then a hard kill after ``timeout``."""
    p = pid(m)
    if p is None:
        return
    os.kill(p, signal.SIGTERM)  # nspawn asks the machine's systemd to halt
    deadline = time.monotonic() + timeout
    while pid(m) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid(m) is not None:
        for child in _children(p):
            os.kill(child, signal.SIGKILL)
        os.kill(p, signal.SIGKILL)
        while pid(m) is not None and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    (m.path / "nspawn.pid").unlink(missing_ok=True)


def _children(p: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    except OSError:
        return []


def wait_sshd(m: MachineRecord, port: int, *, timeout: float = 60.0) -> float:
    """Wait until sshd on ``m`` sends its banner; record and return seconds since boot."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((m.address, port), timeout=1) as s:
                s.settimeout(2)
                if s.recv(16).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LabError(f"{m.name}: sshd on {m.address}:{port} not up after {timeout}s")
        time.sleep(0.05)
    boot = read_boot(m)
    if boot.get("sshd_s") is not None:  # this boot was measured already
        return float(boot["sshd_s"] or 0)
    seconds = round(time.time() - float(boot.get("booted_at") or time.time()), 2)
    _write_boot(m, {**boot, "sshd_s": seconds})
    return seconds


def read_boot(m: MachineRecord) -> dict[str, float | None]:
    """The last boot's record (``booted_at``, ``sshd_s``), or {}."""
    try:
        return json.loads((m.path / "boot.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_boot(m: MachineRecord, data: dict[str, float | None]) -> None:
    tmp = m.path / "boot.json.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(m.path / "boot.json")


def destroy(m: MachineRecord) -> None:
    """Power off, unmount and delete the machine directory."""
    stop(m)
    if is_mounted(m.path / "rootfs"):
        run(["umount", str(m.path / "rootfs")])
    run(["rm", "-rf", "--one-file-system", str(m.path)])
