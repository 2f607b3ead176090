"""Can this box provide the machine kinds an inventory asks for? One line if not.

Checked by `hearth lab up` before anything is made or booted: each missing piece
is named with what to install. arm64 containers need binfmt_misc to run arm64
binaries through qemu-user-static; it is mounted and the qemu-aarch64 handler
enabled here when the packages are installed but the handler is not registered
(a box without systemd as PID 1 does not do it at boot).
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Iterable
from pathlib import Path

from hearth.lab.sh import LabError, ok, run

BINFMT = Path("/proc/sys/fs/binfmt_misc")
# Host command -> Debian package that provides it, for every lab.
HOST_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "nft": "nftables",
    "ip": "iproute2",
    "ssh-keygen": "openssh-client",
    "gpg": "gnupg",
    "mountpoint": "util-linux",
}
VM_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "mkfs.ext4": "e2fsprogs"}
# arm64 on an amd64 box: emulated by qemu-user (the image: mmdebstrap, hearth/lab/arm64image.py)
# (mmdebstrap refuses a foreign architecture without arch-test: "install arch-test for foreign
# architecture support", found on a fresh machine's first arm64 image build)
ARM64_TOOLS = {
    "qemu-aarch64-static": "qemu-user-static", "update-binfmts": "binfmt-support", "arch-test": "arch-test",
}


def native_arch() -> str:
    """This box's Debian architecture name."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def check(kinds: Iterable[tuple[str, str]]) -> None:
    """Raise one LabError naming what to install unless every (kind, arch) can be had."""
    wanted = set(kinds)
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, bridge, systemd-nspawn, qemu)")
    tools = dict(HOST_TOOLS)
    if any(kind == "vm" for kind, _ in wanted):
        tools.update(VM_TOOLS)
    foreign = sorted({arch for kind, arch in wanted if arch != native_arch()})
    if foreign and foreign != ["arm64"]:
        raise LabError(f"lab machines of arch {', '.join(foreign)} are not supported here")
    if foreign:
        tools.update(ARM64_TOOLS)
    missing = sorted({pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None})
    if missing:
        raise LabError(f"missing host packages: apt-get install {' '.join(missing)}")
    if any(kind == "vm" for kind, _ in wanted) and not Path("/dev/net/tun").exists():
        raise LabError("VM lab machines need /dev/net/tun (modprobe tun) for their tap NICs")
    if foreign:
        ensure_binfmt_arm64()


def ensure_binfmt_arm64() -> None:
    """Make arm64 binaries runnable (binfmt_misc + qemu-aarch64 with the F flag) or say why not."""
    handler = BINFMT / "qemu-aarch64"
    if not (BINFMT / "register").exists():
        ok(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
    if not (BINFMT / "register").exists():
        raise LabError(
            f"arm64 machines need binfmt_misc at {BINFMT} and it cannot be mounted here "
            "(modprobe binfmt_misc; in a container the host must provide it)"
        )
    if not handler.exists():
        run(["update-binfmts", "--enable", "qemu-aarch64"], check=False)
    if not handler.exists():
        raise LabError(
            "arm64 machines: binfmt handler qemu-aarch64 not registrable "
            "(apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64)"
        )
    text = handler.read_text()
    fields = dict(line.split(" ", 1) for line in text.splitlines()[1:] if " " in line)
    flags = fields.get("flags:", "").strip()
    if text.splitlines()[0] != "enabled" or "F" not in flags:
        raise LabError(
            f"binfmt handler qemu-aarch64 is disabled or lacks the F flag ({handler}); "
            "reinstall qemu-user-static (Debian registers it with F)"
        )
    if "C" not in flags:
        _reregister_with_credentials(handler, fields, flags)


def _reregister_with_credentials(handler: Path, fields: dict[str, str], flags: str) -> None:
    """Register qemu-aarch64 again with the C (and O) flag: setuid binaries (sudo) then run
    with their owner's credentials inside an arm64 machine, as natively. Debian's
    registration has only P and F, and sudo says "effective uid is not 0" without C."""
    def escaped(hex_text: str) -> str:
        return "".join(f"\\x{hex_text[i:i + 2]}" for i in range(0, len(hex_text), 2))

    spec = ":".join([
        "", "qemu-aarch64", "M", fields["offset"].strip(), escaped(fields["magic"].strip()),
        escaped(fields["mask"].strip()), fields["interpreter"].strip(),
        "".join(sorted(set(flags) | {"O", "C"})),
    ])  # fmt: skip
    handler.write_text("-1")  # remove, then add back with the same magic, mask, interpreter
    (BINFMT / "register").write_text(spec)
    if "C" not in handler.read_text():
        raise LabError(f"could not give binfmt handler qemu-aarch64 the C flag ({handler})")
