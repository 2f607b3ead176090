"""The cached images made from the base image by a chroot script (the VM kind):
built once in a build directory and renamed into place, reused after, never left half-built.

``cp`` and ``chroot`` are replaced by stand-ins that do what the real ones would to the
tree (copy it; what the recipe leaves), so the frame runs as root would run it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from hearth.lab import image, vmimage
from hearth.lab.sh import LabError

HOST_RESOLV = "nameserver 192.0.2.53\n"  # what the chroot sees while the script runs
LAB_RESOLV = "# hearth lab: no DNS on the lab LAN\n"

Recipe = Callable[[Path], None]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "cache" / "base-0123456789abcdef"
    (root / "etc").mkdir(parents=True)
    (root / "etc/resolv.conf").write_text(LAB_RESOLV)
    (root / "etc/os-release").write_text("ID=debian\n")
    return root


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> tuple[list[list[str]], list[Recipe]]:
    """(every command run, the recipe effect the next chroot has on its root)."""
    ran: list[list[str]] = []
    effects: list[Recipe] = []

    def run(argv: Sequence[str], **kwargs: Any) -> None:
        ran.append(list(argv))
        if argv[0] == "cp":
            shutil.copytree(argv[-2], argv[-1], symlinks=True)
        elif argv[0] == "chroot":
            root = Path(argv[1])
            assert (root / "etc/resolv.conf").read_text() == HOST_RESOLV  # apt can resolve
            effects.pop(0)(root)
        else:
            raise AssertionError(f"unexpected command {argv}")

    monkeypatch.setattr(image, "run", run)
    monkeypatch.setattr(image.shutil, "copy", lambda src, dest: Path(dest).write_text(HOST_RESOLV))
    return ran, effects


def kernel(root: Path) -> None:
    (root / "boot").mkdir()
    (root / "boot/vmlinuz-6.1.0-28-amd64").write_text("kernel")
    (root / "boot/initrd.img-6.1.0-28-amd64").write_text("initrd")


def test_the_vm_image_is_built_once_renamed_into_place_then_reused(base: Path, commands: Any) -> None:
    ran, effects = commands
    effects.append(kernel)
    built = vmimage.ensure_vm_image(base.parent, base)
    assert built == base.parent / f"vm-{vmimage.vm_image_key(base)}"
    boot = built / "boot"
    assert vmimage.kernel_files(built) == (boot / "vmlinuz-6.1.0-28-amd64", boot / "initrd.img-6.1.0-28-amd64")
    assert (built / "etc/resolv.conf").read_text() == LAB_RESOLV  # the image's own is back
    assert not (base.parent / f".build-{built.name}").exists()
    assert not (base / "boot").exists()  # the base image is only copied
    assert [argv[0] for argv in ran] == ["cp", "chroot"]
    assert "linux-image-amd64" in ran[1][-1]
    ran.clear()
    assert vmimage.ensure_vm_image(base.parent, base) == built
    assert ran == []  # reused: nothing run


def test_a_failing_recipe_puts_the_images_resolv_conf_back(base: Path, commands: Any) -> None:
    _, effects = commands

    def fails(root: Path) -> None:
        raise LabError("apt-get: could not resolve deb.debian.org")

    effects.append(fails)
    with pytest.raises(LabError, match="could not resolve"):
        vmimage.ensure_vm_image(base.parent, base)
    work = base.parent / f".build-vm-{vmimage.vm_image_key(base)}"
    assert (work / "etc/resolv.conf").read_text() == LAB_RESOLV
    assert not (base.parent / f"vm-{vmimage.vm_image_key(base)}").exists()
