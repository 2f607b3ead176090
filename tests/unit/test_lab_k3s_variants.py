"""What the k3s lab checks and `hearth bench lab` change: deploy.py without k3s, settings per node kind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import k3s as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.lab.cycle import REPO
from hearth.lab.k3s_variants import (
    deploy_without_k3s,
    wait_every_node_ready,
    with_every_node_setting,
    with_server_setting,
)
from hearth.lab.sh import LabError

SHAPES = [REPO / "inventory" / "lab.yml", REPO / "inventory" / "lab2.yml"]


def test_deploy_without_k3s_drops_only_the_k3s_role(tmp_path: Path) -> None:
    full = (REPO / "deploy.py").read_text()
    out = deploy_without_k3s(tmp_path / "deploy.py").read_text()
    compile(out, "deploy_without_k3s.py", "exec")
    assert "roles/k3s/main.py" in full and "roles/k3s/" not in out
    includes = [ln.strip() for ln in full.splitlines() if "local.include(" in ln]
    kept = [ln.strip() for ln in out.splitlines() if "local.include(" in ln]
    assert kept == [i for i in includes if "roles/k3s/" not in i]
    assert 'local.include("roles/nvidia/k3s_runtime.py")' in kept  # another role naming k3s stays


def test_deploy_without_a_k3s_block_is_refused_naming_the_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text('local.include("roles/base/main.py")\n')
    with pytest.raises(LabError, match=f"{plain}: no k3s block"):
        deploy_without_k3s(tmp_path / "out.py", plain)


def _configs(data: dict[str, Any], tmp_path: Path, name: str) -> tuple[Inventory, dict[str, str]]:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    inv = load_inventory(path, group_defaults())  # the changed inventory is still valid
    nodes = configs.servers(inv) + configs.agents(inv)
    return inv, {n: configs.config_file(inv, n).render() for n in nodes}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda p: p.name)
def test_settings_change_the_config_of_exactly_the_nodes_they_name(shape: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(shape.read_text())
    inv, before = _configs(data, tmp_path, "before")
    _, servers_changed = _configs(with_server_setting(data), tmp_path, "servers")
    _, all_changed = _configs(with_every_node_setting(data), tmp_path, "all")
    servers, agents = configs.servers(inv), configs.agents(inv)
    assert servers and agents
    assert all(servers_changed[n] != before[n] for n in servers)
    assert all(servers_changed[n] == before[n] for n in agents)
    assert all(all_changed[n] != servers_changed[n] for n in servers + agents)
    assert data == yaml.safe_load(shape.read_text())  # the caller's data is not touched


def test_settings_need_a_k3s_section() -> None:
    with pytest.raises(LabError, match="no k3s section"):
        with_every_node_setting({"hosts": {}})


def _inv() -> Inventory:
    return load_inventory(SHAPES[0], group_defaults())


def test_wait_returns_once_every_node_is_ready() -> None:
    answers = iter([
        {"nodes": {}, "error": "ssh lab-cp: refused"},
        {"nodes": {"a": "Ready", "b": "NotReady"}, "error": None},
        {"nodes": {"a": "Ready", "b": "Ready"}, "error": None},
    ])
    calls: list[int] = []

    def read(_: Inventory) -> dict[str, Any]:
        calls.append(1)
        return next(answers)

    elapsed = wait_every_node_ready(_inv(), time.monotonic(), timeout_s=30, read=read)
    assert len(calls) == 3 and 0 < elapsed < 30


def test_wait_gives_up_with_the_last_states_seen() -> None:
    def read(_: Inventory) -> dict[str, Any]:
        return {"nodes": {"a": "Ready", "b": "missing"}, "error": None}

    with pytest.raises(LabError, match=r"not all Ready 0 s after the change: .*'b': 'missing'"):
        wait_every_node_ready(_inv(), time.monotonic() - 1, timeout_s=0.1, read=read)
