"""A second lab beside the default one (`make test` runs both lab shapes at once)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from hearth.lab import beside, keys, spec
from hearth.lab.image import cache_lock
from hearth.lab.state import DEFAULT_ROOT

REPO = Path(__file__).resolve().parents[2]
SHAPES = [REPO / "inventory" / "lab.yml", REPO / "inventory" / "lab2.yml"]


def test_the_second_lab_shares_nothing_but_the_image_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HEARTH_LAB_ROOT", "HEARTH_LAB_CACHE"):
        monkeypatch.delenv(key, raising=False)
    env = beside.second_lab_env()
    defaults = {"HEARTH_LAB_ROOT": str(DEFAULT_ROOT), "HEARTH_LAB_BRIDGE": spec.BRIDGE,
                "HEARTH_LAB_NFT_TABLE": "hearth_lab", "HEARTH_LAB_NETNS_PREFIX": "hearth-"}
    for key, default in defaults.items():
        assert env[key] and env[key] != default, key
    assert len(env["HEARTH_LAB_BRIDGE"]) <= 15  # IFNAMSIZ
    assert env["HEARTH_LAB_CACHE"] == str(DEFAULT_ROOT / "cache")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda p: p.name)
def test_the_copy_keeps_every_lab_path_inside_the_second_root(shape: Path, tmp_path: Path) -> None:
    root = Path(beside.second_lab_env()["HEARTH_LAB_ROOT"])
    copy = beside.inventory_copy(shape, tmp_path, root)
    assert copy == tmp_path / shape.name
    assert f"{DEFAULT_ROOT}/" in shape.read_text()
    assert f"{DEFAULT_ROOT}/" not in copy.read_text()
    lab = spec.load_spec(copy)
    assert lab.ssh_key.is_relative_to(root) and lab.known_hosts.is_relative_to(root)
    assert [m.name for m in lab.machines] == [m.name for m in spec.load_spec(shape).machines]
    original = keys.secret_files(shape, DEFAULT_ROOT)
    moved = keys.secret_files(copy, root)
    assert [p.relative_to(root) for p in moved] == [p.relative_to(DEFAULT_ROOT) for p in original]


def test_the_module_prints_the_environment_and_the_copy(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "hearth.lab.beside", str(SHAPES[1]), str(tmp_path)],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert Path(env["HEARTH_SECOND_INVENTORY"]) == tmp_path / "lab2.yml"
    assert env["HEARTH_LAB_ROOT"] in Path(env["HEARTH_SECOND_INVENTORY"]).read_text()


def test_a_second_image_build_waits_for_the_first(tmp_path: Path) -> None:
    order: list[str] = []
    entered = threading.Event()

    def second() -> None:
        with cache_lock(tmp_path):
            order.append("second")
            entered.set()

    with cache_lock(tmp_path):
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not entered.wait(0.5), "the second build went in while the first held the cache"
        order.append("first done")
    assert entered.wait(10)
    waiter.join(10)
    assert order == ["first done", "second"]


KINDS = REPO / "tests" / "lab" / "kinds.yml"
PRIVATE_LANS = {f"192.168.9{n}.0/24" for n in range(10)}  # the helpers' private labs (192.168.9N)


def _names_and_nets(path: Path) -> tuple[set[str], set[str]]:
    """(host and client names, LAN and overlay networks) of a lab inventory."""
    data = yaml.safe_load(path.read_text())
    names = set(data["hosts"]) | set(data.get("clients") or {})
    return names, {data["lan"]["cidr"], data["overlay"]["cidr"]}


def test_the_kinds_shape_can_run_beside_both_ci_shapes(tmp_path: Path) -> None:
    kinds_names, kinds_nets = _names_and_nets(KINDS)
    for shape in SHAPES:
        names, nets = _names_and_nets(shape)
        assert not kinds_names & names and not kinds_nets & nets, shape.name
    assert not kinds_nets & PRIVATE_LANS
    machines = spec.load_spec(beside.inventory_copy(KINDS, tmp_path, DEFAULT_ROOT.with_name("hearth-kinds"))).machines
    assert {(m.kind, m.arch) for m in machines} >= {("vm", "amd64"), ("container", "arm64")}
    env = beside.second_lab_env("hearth-kinds")
    bridge = env["HEARTH_LAB_BRIDGE"]
    assert len(bridge) <= 15 and bridge != beside.second_lab_env()["HEARTH_LAB_BRIDGE"]
