"""KVM or TCG for the lab's VMs: decided by trying KVM, bounded, and saying why.

/dev/kvm can exist and still not work (on some nested setups a guest hangs right
after real mode). So the lab boots the VM kernel once under KVM with no root
disk: a working KVM gets that kernel to its "VFS: Unable to mount root" panic in
about a second; a broken one prints nothing. Without a verdict within
``PROBE_TIMEOUT_S`` the lab uses TCG (emulation, 5-17x slower guest code). The
verdict is cached per host boot (``/proc/sys/kernel/random/boot_id``), QEMU binary
and kernel. ``HEARTH_LAB_ACCEL=kvm|tcg`` forces one (for measuring both).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from pathlib import Path

PROBE_TIMEOUT_S = 10.0
QEMU = "qemu-system-x86_64"
PROBE_ARGV = [
    QEMU, "-machine", "pc,accel=kvm", "-cpu", "host", "-m", "256", "-nodefaults",
    "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
]  # fmt: skip
REACHED = (b"VFS: Unable to mount root", b"Kernel panic")
KVM_DEVICE = Path("/dev/kvm")


def choose(kernel: Path, cache_file: Path) -> tuple[str, str]:
    """("kvm" or "tcg", why) for VMs booting ``kernel``."""
    forced = os.environ.get("HEARTH_LAB_ACCEL", "")
    if forced in ("kvm", "tcg"):
        return forced, f"forced by HEARTH_LAB_ACCEL={forced}"
    if not KVM_DEVICE.exists():
        return "tcg", f"no {KVM_DEVICE} on this machine"
    try:
        os.close(os.open(KVM_DEVICE, os.O_RDWR))
    except OSError as exc:
        return "tcg", f"/dev/kvm cannot be opened ({exc.strerror})"
    key = f"{_boot_id()} {_qemu_stamp()} {kernel.name}"
    try:
        cached = json.loads(cache_file.read_text())
        if cached.get("key") == key:
            return str(cached["accel"]), str(cached["why"])
    except (OSError, ValueError, KeyError):
        pass
    accel, why = probe(kernel)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps({"key": key, "accel": accel, "why": why}) + "\n")
    return accel, why


def probe(kernel: Path, timeout: float = PROBE_TIMEOUT_S) -> tuple[str, str]:
    """Boot ``kernel`` under KVM without a root disk; kvm if it gets to its panic in time."""
    argv = [*PROBE_ARGV, "-kernel", str(kernel),
            "-append", "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 quiet"]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while (left := timeout - (time.monotonic() - start)) > 0:
            if not sel.select(timeout=left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen = (seen + chunk)[-8192:]
            if any(mark in seen for mark in REACHED):
                took = time.monotonic() - start
                return "kvm", f"a test guest booted its kernel under KVM in {took:.1f}s"
    finally:
        sel.close()
        proc.kill()
        proc.wait()
    said = "printed nothing" if not seen.strip() else "did not get through its kernel boot"
    if b"Could not access KVM" in seen or b"failed to initialize kvm" in seen:
        said = "could not start: " + seen.decode(errors="replace").strip().splitlines()[-1]
    return "tcg", (f"/dev/kvm is present but a test guest under KVM {said} within "
                   f"{timeout:.0f}s; using TCG (emulation)")  # fmt: skip


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "?"


def _qemu_stamp() -> str:
    import shutil

    path = shutil.which(QEMU)
    return f"{path}:{os.stat(path).st_mtime_ns}" if path else "none"
