"""The VM kind's images: a root with Debian's kernel in it, and one ext4 disk per VM.

The VM image is the amd64 base image plus ``linux-image-amd64``, systemd-networkd
(a VM configures its own NIC; a container's is configured from outside) and real
suspend (no lab drop-in: ``systemctl suspend`` is S3). It is cached beside the base
image under a hash of the base image's name and this recipe. Each VM's disk is made
from its merged root (image + its identity) with ``mkfs.ext4 -d``, no loop mount,
once; it is the VM's disk from then on (reboots and suspends keep it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hearth.lab.image import ensure_derived_image
from hearth.lab.sh import LabError, run

DISK_SIZE = "4G"  # sparse: only what is written takes space
KERNEL_PACKAGES = ("linux-image-amd64",)

VM_RECIPE = """\
set -eu
rm -f /etc/systemd/system/systemd-suspend.service.d/hearth-lab.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends {packages} >/dev/null
systemctl enable systemd-networkd.service >/dev/null 2>&1
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > /etc/fstab
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
"""


def vm_image_key(base: Path) -> str:
    """Content hash naming the cached VM image (covers the base image it starts from)."""
    text = "\n".join([base.name, " ".join(KERNEL_PACKAGES), VM_RECIPE])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_vm_image(cache_dir: Path, base: Path) -> Path:
    """The cached VM image directory (a copy of ``base`` with a kernel), built if absent."""
    return ensure_derived_image(
        cache_dir / f"vm-{vm_image_key(base)}", base, VM_RECIPE.format(packages=" ".join(KERNEL_PACKAGES)),
        what="VM image", adds=f"base image + {' '.join(KERNEL_PACKAGES)}",
        built=lambda image: kernel_files(image, missing_ok=True),
        missing="no /boot/vmlinuz-* with its initrd.img (linux-image-amd64 missing?)", timeout_s=1200)


def kernel_files(image: Path, *, missing_ok: bool = False) -> tuple[Path, Path] | None:
    """(vmlinuz, initrd.img) in the image's /boot: the VM boots them directly."""
    kernels = sorted((image / "boot").glob("vmlinuz-*")) if (image / "boot").is_dir() else []
    for vmlinuz in reversed(kernels):
        initrd = vmlinuz.with_name(vmlinuz.name.replace("vmlinuz-", "initrd.img-"))
        if initrd.exists():
            return vmlinuz, initrd
    if missing_ok:
        return None
    raise LabError(f"{image}: no /boot/vmlinuz-* with its initrd.img (linux-image-amd64 missing?)")


def make_disk(root: Path, disk: Path) -> None:
    """An ext4 image of ``root`` (sparse, ``DISK_SIZE``) at ``disk``; written atomically."""
    tmp = disk.with_name(disk.name + ".tmp")
    tmp.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "hearth-root", "-E", "root_owner=0:0",
         "-d", str(root), str(tmp), DISK_SIZE], timeout=600)  # fmt: skip
    tmp.replace(disk)
