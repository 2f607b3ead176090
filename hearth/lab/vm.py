"""The VM kind: a QEMU i440fx machine with its own kernel, disk and real S3 suspend.

* **Disk**: ``disk.img``, ext4 made once from the machine's merged root (VM image
  + identity + its NIC's systemd-networkd file) with ``mkfs.ext4 -d``; from then on
  it is the machine's disk (reboots and suspends keep it; `down` deletes it).
* **Boot**: direct kernel boot of the image's ``/boot/vmlinuz-*`` and initrd,
  ``root=/dev/vda console=ttyS0 net.ifnames=0``; serial console appended to
  ``console.log``. KVM when a bounded trial shows it works, else TCG
  (:mod:`hearth.lab.accel`); ``accel.json`` says which and why.
* **NIC**: virtio-net with the inventory's MAC on a tap port of the lab bridge, so
  magic packets, SSH, the apt proxy and the artifact server reach it like the
  containers. The guest sets its own address (systemd-networkd).
* **Sleep**: ``-global PIIX4_PM.disable_s3=0`` gives the guest S3: `systemctl
  suspend` inside really suspends it (QMP ``query-status`` says ``suspended``;
  memory and processes stay); QMP ``system_wakeup`` resumes it.
* **QMP** at ``qmp.sock``; ``qemu.pid`` while it runs; ``qemu.log`` QEMU's own output.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from hearth.lab import accel, qmp, vmimage
from hearth.lab.machine import Machine, live_pid, prepare_root, tail
from hearth.lab.sh import LabError
from hearth.lab.state import LabRecord

NETWORK_FILE = "etc/systemd/network/10-hearth-lab.network"
NETWORK = """\
# hearth lab: this VM's NIC, the inventory's MAC and address on the lab LAN
[Match]
MACAddress={mac}

[Network]
Address={address}/{prefix}
Gateway={gateway}
LinkLocalAddressing=no
IPv6AcceptRA=no
"""
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
# The chipset and the switch that lets the guest enter S3 (`systemctl suspend` = real sleep).
# i440fx ("pc"), not q35: under QEMU 7.2 a q35 guest woken by QMP `system_wakeup` never
# enters S3 again (its next suspend returns at once); i440fx sleeps and wakes every time.
MACHINE, S3_SWITCH = "pc", "PIIX4_PM.disable_s3=0"


class VirtualMachine(Machine):
    """A QEMU VM on the lab bridge."""

    kind = "vm"

    @property
    def qmp_sock(self) -> Path:
        """The VM's QMP socket."""
        return self.path / "qmp.sock"

    def create(self, lab: LabRecord, pubkey: str, apt_proxy_port: int) -> str:
        root = prepare_root(self.record, lab, pubkey, apt_proxy_port)
        prefix = ipaddress.IPv4Interface(lab.host_cidr).network.prefixlen
        (root / NETWORK_FILE).write_text(NETWORK.format(
            mac=self.record.mac, address=self.record.address, prefix=prefix, gateway=lab.host_ip,
        ))  # fmt: skip
        if not (self.path / "disk.img").exists():
            vmimage.make_disk(root, self.path / "disk.img")
        return self.host_key()

    def pid(self) -> int | None:
        return live_pid(self.path / "qemu.pid", f"hearth-lab-{self.name}")

    def state(self) -> str:
        if self.pid() is None:
            return "off"
        try:
            status = qmp.status(self.qmp_sock)
        except LabError:
            return "on"  # starting up: QMP not listening yet
        return "asleep" if status == "suspended" else "on"

    def accel(self) -> tuple[str, str]:
        """(accelerator, why) for this VM's next boot."""
        kernel, _ = self._kernel()
        return accel.choose(kernel, Path(self.record.base).parent / "accel.json")

    def _kernel(self) -> tuple[Path, Path]:
        files = vmimage.kernel_files(Path(self.record.base))
        assert files is not None
        return files

    def argv(self, acceleration: str) -> list[str]:
        """The QEMU command line that boots this VM."""
        m, d = self.record, self.path
        kernel, initrd = self._kernel()
        return [
            accel.QEMU, "-name", f"hearth-lab-{m.name}",
            # TCG: QEMU's default CPU model; "max" (5-level paging and all) hangs after an S3 resume here
            "-machine", f"{MACHINE},accel={acceleration}", *(["-cpu", "host"] if acceleration == "kvm" else []),
            "-smp", str(m.cpus), "-m", str(m.memory_mb),
            "-global", S3_SWITCH,  # S3: `systemctl suspend` really suspends
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", KERNEL_ARGS,
            "-drive", f"file={d / 'disk.img'},format=raw,if=virtio",
            "-netdev", f"tap,id=lan,ifname={m.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=lan,mac={m.mac},romfile=",  # no PXE ROM: direct boot
            "-device", "virtio-rng-pci",
            "-chardev", f"file,id=console,path={d / 'console.log'},append=on",
            "-serial", "chardev:console",
            "-qmp", f"unix:{self.qmp_sock},server=on,wait=off",
        ]  # fmt: skip

    def power_on(self) -> subprocess.Popen[bytes] | None:
        if self.pid() is not None:
            return None
        acceleration, why = self.accel()
        (self.path / "accel.json").write_text(json.dumps({"accel": acceleration, "why": why}))
        self.qmp_sock.unlink(missing_ok=True)
        # The boot record first: whoever sees the new pid must never read the last boot's record.
        self.mark_booted()
        with open(self.path / "qemu.log", "ab") as log:
            proc = subprocess.Popen(
                self.argv(acceleration), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        (self.path / "qemu.pid").write_text(f"{proc.pid}\n")
        return proc

    def wake(self) -> subprocess.Popen[bytes] | None:
        state = self.state()
        if state == "off":
            return self.power_on()
        if state == "asleep":
            self.mark_booted(resumed=True)
            qmp.command(self.qmp_sock, "system_wakeup")
        return None

    def power_off(self, *, timeout: float = 60.0, hard: bool = False) -> None:
        p = self.pid()
        if p is None:
            return
        deadline = time.monotonic() + timeout
        if not hard:
            try:
                if qmp.status(self.qmp_sock) == "suspended":
                    qmp.command(self.qmp_sock, "system_wakeup")
                qmp.command(self.qmp_sock, "system_powerdown")  # ACPI power button
            except LabError:
                pass
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.1)
        if self.pid() is not None:
            with contextlib.suppress(LabError):
                qmp.command(self.qmp_sock, "quit")
            end = time.monotonic() + 5
            while self.pid() is not None and time.monotonic() < end:
                time.sleep(0.05)
        if self.pid() is not None:
            os.kill(p, signal.SIGKILL)
            end = time.monotonic() + 5
            while self.pid() is not None and time.monotonic() < end:
                time.sleep(0.05)
        (self.path / "qemu.pid").unlink(missing_ok=True)

    def console_log(self, lines: int = 30) -> str:
        return tail(self.path / "console.log", lines) or tail(self.path / "qemu.log", lines)

    def describe(self) -> dict[str, str]:
        info = super().describe()
        try:
            used = json.loads((self.path / "accel.json").read_text())
            info.update(accel=str(used["accel"]), accel_why=str(used["why"]))
        except (OSError, ValueError, KeyError):
            info.update(accel="-", accel_why="not booted yet")
        return info
