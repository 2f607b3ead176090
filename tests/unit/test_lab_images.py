"""hearth.lab.images: which cached images are current, which a lab uses, and pruning the rest.

A cache in a temporary directory: image directories made by hand (no image is built),
a lab record naming one image, a real process naming another in its command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.lab import images
from hearth.lab.arm64image import NFT_DIVERTED, ensure_arm64_lab_image
from hearth.lab.image import ensure_base_image
from hearth.lab.vmimage import ensure_vm_image

USER = "hearth"


def make_image(path: Path, *, vm: bool = False, arm64: bool = False) -> Path:
    """A directory that the lab takes for a finished image of its kind (nothing else in it)."""
    (path / "etc").mkdir(parents=True)
    (path / "etc/os-release").write_text('ID=debian\n')
    if vm:
        (path / "boot").mkdir()
        (path / "boot/vmlinuz-6.1.0-1-amd64").write_text("k")
        (path / "boot/initrd.img-6.1.0-1-amd64").write_text("i")
    if arm64:
        diverted = path / NFT_DIVERTED.lstrip("/")
        diverted.parent.mkdir(parents=True, exist_ok=True)
        diverted.write_text("nft")
    (path / "payload").write_bytes(b"x" * 65536)
    return path


def write_lab_record(root: Path, image: Path) -> Path:
    """A lab record at ``root`` (as ``lab up`` leaves it) whose one machine boots from ``image``."""
    root.mkdir(parents=True)
    record = {"inventory": "x.yml", "bridge": "b", "bridge_created": True, "host_cidr": "192.0.2.1/24",
              "broadcast": "192.0.2.255", "nft_table": "t", "ssh_user": USER, "ssh_port": 22, "ssh_key": "k",
              "known_hosts": "kh", "machines": {"pi": {"name": "pi", "address": "192.0.2.5", "mac": "02:00:00:00:00:05",
                                                       "netns": "n", "veth": "v", "dir": str(root / "pi"),
                                                       "base": str(image), "arch": "arm64"}}}
    (root / "lab.json").write_text(json.dumps(record))
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache holding exactly what this checkout boots for USER."""
    cache = tmp_path / "cache"
    for name in images.current_names(USER):
        make_image(cache / name, vm=name.startswith("vm-"), arm64=name.startswith("arm64-"))
    return cache


def test_current_images_are_the_ones_up_reuses(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ensure_base_image(cache, USER)
    arm64 = ensure_arm64_lab_image(cache, USER)  # an amd64 host emulates arm64 machines
    native_arm64 = ensure_base_image(cache, USER, "arm64")  # an arm64 host runs them natively
    vms = {ensure_vm_image(cache, base), ensure_vm_image(cache, native_arm64)}
    said = capsys.readouterr().out
    assert said.count("Reuse cached") == 5 and "Build" not in said, said
    assert {base.name, arm64.name, native_arm64.name, *(vm.name for vm in vms)} == images.current_names(USER)
    assert images.current_names("someone-else").isdisjoint(images.current_names(USER))  # the user is baked in


@pytest.fixture
def process_naming(tmp_path: Path) -> Iterator[Path]:
    """A stale image that a running process names in its command line (as qemu names its kernel)."""
    image = make_image(tmp_path / "cache" / "vm-00000000000000b2", vm=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(image / "boot")])
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 10
    while str(image).encode() not in cmdline.read_bytes():  # until it has exec'd (a fork shows ours)
        assert time.monotonic() < deadline, "the process never showed its command line"
        time.sleep(0.01)
    try:
        yield image
    finally:
        proc.kill()
        proc.wait()


def test_prune_keeps_current_and_used_images_and_removes_the_rest(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, process_naming: Path) -> None:
    old_base = make_image(cache / "base-00000000000000a1")
    in_a_lab = make_image(cache / "arm64-00000000000000a2", arm64=True)
    unfinished = make_image(cache / ".build-base-00000000000000a3")
    (cache / "wheels").mkdir()  # not an image: never listed, never removed
    root = write_lab_record(tmp_path / "hearth-lab2", in_a_lab)
    monkeypatch.setattr(images, "lab_roots", lambda cache: [root])

    states = {i.path.name: i for i in images.survey(cache, USER)}
    assert "wheels" not in states
    assert {n for n, i in states.items() if i.state == "current"} == images.current_names(USER)
    assert states[in_a_lab.name].state == "in use" and states[in_a_lab.name].used_by == (f"lab {root}",)
    assert states[process_naming.name].state == "in use"
    assert states[process_naming.name].used_by[0].startswith("process ")
    assert {n for n, i in states.items() if i.state == "stale"} == {old_base.name, unfinished.name}
    assert states[old_base.name].size >= 65536

    removed = images.prune(cache, USER)
    assert sorted(i.path.name for i in removed) == sorted([old_base.name, unfinished.name])
    left = {p.name for p in cache.iterdir() if p.is_dir()}
    assert left == images.current_names(USER) | {in_a_lab.name, process_naming.name, "wheels"}


def test_the_cli_lists_what_is_stale_then_prunes_it(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from hearth.cli import main

    monkeypatch.setenv("HEARTH_LAB_CACHE", str(cache))
    stale = make_image(cache / "vm-00000000000000c1", vm=True)
    assert main(["lab", "images"]) == 0
    listed = capsys.readouterr().out
    assert f"{stale.name}" in listed and "1 stale" in listed and "hearth lab images --prune" in listed
    assert stale.is_dir(), "listing removes nothing"
    assert main(["lab", "images", "--prune"]) == 0
    assert "removed 1 stale" in capsys.readouterr().out and not stale.exists()
    assert main(["lab", "images"]) == 0 and "0 stale, 0 MiB" in capsys.readouterr().out


def test_up_says_when_the_cache_holds_stale_images(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from hearth.lab import lifecycle
    from hearth.lab.spec import load_spec

    monkeypatch.setattr(lifecycle.hostcheck, "native_arch", lambda: "amd64")
    spec = load_spec(Path("tests/lab/kinds.yml"))  # a container, a VM and an emulated arm64 machine
    booted = lifecycle.images(spec, cache)
    assert {p.name for p in booted.values()} <= images.current_names(USER)
    assert "stale" not in capsys.readouterr().out
    make_image(cache / "arm64-00000000000000d1", arm64=True)
    lifecycle.images(spec, cache)
    assert "1 stale image(s)" in capsys.readouterr().out


def test_a_lab_rooted_anywhere_keeps_its_images_while_its_machines_are_off(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No mount or process names the image of a lab whose machines are all off, and its root
    (``HEARTH_LAB_ROOT``) is nowhere near /var/lib/hearth-*: the note ``lab up`` left in the
    cache is what keeps the image, until ``lab down`` takes the note back."""
    monkeypatch.setenv("HEARTH_LAB_ROOT", str(tmp_path / "this-lab"))  # the lab running the command
    image = make_image(cache / "vm-00000000000000e1", vm=True)
    elsewhere = write_lab_record(tmp_path / "srv" / "my lab", image)
    states = {i.path.name: i.state for i in images.survey(cache, USER)}
    assert states[image.name] == "stale", "unnoted, the lab's image looks stale (what the note mends)"

    images.register_lab(cache, elsewhere)
    images.register_lab(cache, elsewhere)  # a second `up`: one note, unchanged
    assert images.registered_roots(cache) == [elsewhere]
    used = {i.path.name: i for i in images.survey(cache, USER)}[image.name]
    assert used.state == "in use" and used.used_by == (f"lab {elsewhere}",)
    assert image.name not in {i.path.name for i in images.prune(cache, USER)} and image.is_dir()

    (elsewhere / "lab.json").unlink()  # the lab went down without its note taken back (another cache env)
    assert [i.path.name for i in images.prune(cache, USER)] == [image.name]
    assert images.registered_roots(cache) == [], "prune drops the notes of labs that are down"

    images.register_lab(cache, elsewhere)
    images.unregister_lab(cache, elsewhere)
    images.unregister_lab(cache, elsewhere)  # `down` twice: no error
    assert images.registered_roots(cache) == []

