"""The container kind: systemd-nspawn on an overlay root, amd64 or arm64 (emulated).

An arm64 container boots an arm64 Debian root; its binaries run through
qemu-user-static, which binfmt_misc registers with the ``F`` flag so they run
inside the container's namespaces too (checked by :mod:`hearth.lab.hostcheck`).

Beyond the shared layout (:mod:`hearth.lab.machine`) its directory has::

    ctl/           bind-mounted at /run/hearth-lab (suspend requests land here)
    power-state    stand-in for /sys/power/state so logind allows `systemctl suspend`
    nspawn.pid     nspawn's pid while powered on; nspawn.log its output (the console)
    asleep         present while the lab holds the machine powered off after a suspend

A container shares the host's kernel, so it cannot really suspend: its
`systemctl suspend` asks the lab (a drop-in in the image) to power it off and
mark it asleep; a magic packet boots it again with the same disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from hearth.lab.machine import Machine, live_pid, prepare_root, tail
from hearth.lab.state import LabRecord, MachineRecord


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


class Container(Machine):
    """A systemd-nspawn machine in its own network namespace."""

    kind = "container"

    def create(self, lab: LabRecord, pubkey: str, apt_proxy_port: int) -> str:
        (self.path / "ctl").mkdir(parents=True, exist_ok=True)
        (self.path / "power-state").write_text("freeze mem\n")
        prepare_root(self.record, lab, pubkey, apt_proxy_port)
        return self.host_key()

    def pid(self) -> int | None:
        return live_pid(self.path / "nspawn.pid", f"--machine={self.name}")

    def state(self) -> str:
        if self.pid() is not None:
            return "on"
        return "asleep" if (self.path / "asleep").exists() else "off"

    def power_on(self) -> subprocess.Popen[bytes] | None:
        if self.pid() is not None:
            return None
        for stale in ("asleep", "ctl/suspend-requested", "nspawn.pid"):
            (self.path / stale).unlink(missing_ok=True)
        # /proc/sys is read-only in nspawn; net.* sysctls are per network namespace, so
        # the machine may set its own, as nspawn allows for --private-network machines.
        env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
        # The boot record first: whoever sees the new pid must never read the last boot's record.
        self.mark_booted()
        with open(self.path / "nspawn.log", "ab") as log:
            proc = subprocess.Popen(
                nspawn_argv(self.record), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )  # fmt: skip
        (self.path / "nspawn.pid").write_text(f"{proc.pid}\n")
        return proc

    def wake(self) -> subprocess.Popen[bytes] | None:
        return self.power_on()

    def power_off(self, *, timeout: float = 20.0, hard: bool = False) -> None:
        p = self.pid()
        if p is None:
            return
        os.kill(p, signal.SIGTERM)  # nspawn asks the machine's systemd to halt
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid() is not None:
            for child in _children(p):
                os.kill(child, signal.SIGKILL)
            os.kill(p, signal.SIGKILL)
            while self.pid() is not None and time.monotonic() < deadline + 5:
                time.sleep(0.05)
        (self.path / "nspawn.pid").unlink(missing_ok=True)

    def suspend_requested(self) -> bool:
        return (self.path / "ctl" / "suspend-requested").exists()

    def suspend(self) -> None:
        self.power_off()
        (self.path / "asleep").write_text(f"{time.time():.0f}\n")
        (self.path / "ctl" / "suspend-requested").unlink(missing_ok=True)

    def console_log(self, lines: int = 30) -> str:
        return tail(self.path / "nspawn.log", lines)


def _children(p: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    except OSError:
        return []
