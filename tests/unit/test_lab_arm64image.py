"""The arm64 lab image (hearth.lab.arm64image): one mmdebstrap build, keyed by its recipe.

``run`` is replaced by a stand-in that does to the tree what mmdebstrap and the
customising chroot would (or, for a broken build, what they would leave), so the
frame (build directory, rename, reuse, errors) runs as it would as root.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from hearth.lab import arm64image, image
from hearth.lab.sh import LabError

Effect = Callable[[Path], None]


def finished(root: Path) -> None:
    """What a good mmdebstrap run leaves: a Debian root with the nft diverted."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/nft.arm64").write_text("aarch64 nft")
    (root / "usr/sbin/sshd").write_text("sshd")
    (root / "etc/systemd/system/systemd-suspend.service.d").mkdir(parents=True)  # the recipe's mkdir


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> tuple[list[list[str]], list[Effect]]:
    """(every command run, the effect the next mmdebstrap has on its target)."""
    commands: list[list[str]] = []
    effects: list[Effect] = []

    def run(argv: Sequence[str], **kwargs: Any) -> None:
        commands.append(list(argv))
        if argv[0] == "mmdebstrap":
            effects.pop(0)(Path(argv[-2]))
        elif argv[0] != "chroot":
            raise AssertionError(f"unexpected command {argv}")

    monkeypatch.setattr(arm64image, "run", run)
    monkeypatch.setattr(image, "run", run)
    return commands, effects


def test_the_command_line_resolves_natively_for_two_architectures() -> None:
    argv = arm64image.mmdebstrap_argv(Path("/cache/.build-x"))
    assert argv[:3] == ["mmdebstrap", "--variant=minbase", "--architectures=arm64,amd64"]  # arm64 native inside
    assert argv[-3:] == [image.SUITE, "/cache/.build-x", image.MIRROR]
    assert f"--hook-dir={image.MERGED_USR_HOOKS}" in argv  # usr-is-merged, as the amd64 image: no usrmerge, no perl
    include = next(a for a in argv if a.startswith("--include=")).removeprefix("--include=").split(",")
    assert include == [*image.PACKAGES, "libnftables1:amd64", "libedit2:amd64"]
    hook = customize_hooks()[0]  # the nft hook runs first
    assert 'dpkg-divert --root "$root" --local --rename --divert /usr/sbin/nft.arm64 --add /usr/sbin/nft' in hook
    assert "download -qq nftables:amd64" in hook and 'install -m 0755 x/usr/sbin/nft "$root/usr/sbin/nft"' in hook


def customize_hooks() -> list[str]:
    """The shell of each --customize-hook of the build's command line, in order."""
    argv = arm64image.mmdebstrap_argv(Path("/cache/.build-x"))
    return [a.removeprefix("--customize-hook=") for a in argv if a.startswith("--customize-hook=")]


def test_units_with_credentials_get_a_drop_in_that_resets_them(tmp_path: Path) -> None:
    """The hook itself, run by bash on a root: qemu-user cannot set up unit credentials."""
    units = tmp_path / "usr/lib/systemd/system"
    units.mkdir(parents=True)
    (units / "systemd-sysctl.service").write_text("[Service]\nLoadCredential=sysctl.extra\n")
    (units / "ssh.service").write_text("[Service]\nExecStart=/usr/sbin/sshd -D\n")
    assert arm64image.credentials_hook() in customize_hooks()
    subprocess.run(["bash", "-c", arm64image.credentials_hook(), "hook", str(tmp_path)], check=True)
    dropins = tmp_path / "etc/systemd/system"
    assert (dropins / "systemd-sysctl.service.d/hearth-lab-qemu-user.conf").read_text() == (
        "[Service]\nLoadCredential=\n")
    assert not (dropins / "ssh.service.d").exists()


def test_logind_keeps_a_users_manager_once_started(tmp_path: Path) -> None:
    """The hook itself, run by bash on a root: under qemu-user stopping user@UID.service stalls logins."""
    assert arm64image.logind_hook() in customize_hooks()
    subprocess.run(["bash", "-c", arm64image.logind_hook(), "hook", str(tmp_path)], check=True)
    dropin = tmp_path / "etc/systemd/logind.conf.d/hearth-lab-qemu-user.conf"
    assert dropin.read_text() == "[Login]\nUserStopDelaySec=infinity\n"


def test_the_key_changes_with_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    key = arm64image.arm64_image_key("hearth")
    assert len(key) == 16 and arm64image.arm64_image_key("hearth") == key
    assert arm64image.arm64_image_key("other") != key  # the base recipe's user
    monkeypatch.setattr(arm64image, "NATIVE_LIBS", ("libnftables1:amd64",))
    assert arm64image.arm64_image_key("hearth") != key  # the package list
    monkeypatch.undo()
    monkeypatch.setattr(arm64image, "NFT_HOOK", arm64image.NFT_HOOK + "true\n")
    assert arm64image.arm64_image_key("hearth") != key  # the hook
    monkeypatch.undo()
    monkeypatch.setattr(arm64image, "CREDENTIALS_HOOK", arm64image.CREDENTIALS_HOOK + "true\n")
    assert arm64image.arm64_image_key("hearth") != key  # the other hook
    monkeypatch.undo()
    monkeypatch.setattr(arm64image, "LOGIND_HOOK", arm64image.LOGIND_HOOK + "true\n")
    assert arm64image.arm64_image_key("hearth") != key  # the third hook
    monkeypatch.undo()
    monkeypatch.setattr(image, "PACKAGES", (*image.PACKAGES, "vim"))
    assert arm64image.arm64_image_key("hearth") != key  # the base image's packages


def test_built_once_customised_renamed_into_place_then_reused(tmp_path: Path, ran: Any) -> None:
    commands, effects = ran
    effects.append(finished)
    target = arm64image.ensure_arm64_lab_image(tmp_path, "hearth")
    assert target == tmp_path / f"arm64-{arm64image.arm64_image_key('hearth')}"
    assert arm64image.built(target) and not (tmp_path / f".build-{target.name}").exists()
    assert [argv[0] for argv in commands] == ["mmdebstrap", "chroot"]
    assert commands[0][-2] == str(tmp_path / f".build-{target.name}")  # built aside, then renamed
    assert "useradd" in commands[1][-1] and "hearth" in commands[1][-1]  # the base image's customisation
    commands.clear()
    assert arm64image.ensure_arm64_lab_image(tmp_path, "hearth") == target
    assert commands == []  # reused: nothing run


def test_a_build_without_the_native_nft_leaves_no_image(tmp_path: Path, ran: Any) -> None:
    commands, effects = ran
    effects.append(lambda root: (root / "etc").mkdir(parents=True) or (root / "etc/os-release").touch())
    with pytest.raises(LabError, match=r"\.build-arm64-\w+: mmdebstrap left no /usr/sbin/nft.arm64"):
        arm64image.ensure_arm64_lab_image(tmp_path, "hearth")
    assert not list(tmp_path.glob("arm64-*"))
    effects.append(finished)  # the next try starts from an empty build directory
    assert arm64image.built(arm64image.ensure_arm64_lab_image(tmp_path, "hearth"))
    assert [argv[0] for argv in commands] == ["mmdebstrap", "mmdebstrap", "chroot"]
