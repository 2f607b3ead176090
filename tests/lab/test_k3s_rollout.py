"""k3s rollout and download failures in the lab (re-deploys with changed settings; local lab only).

A changed setting restarts exactly the nodes it touches, servers first, one node at a
time, each up again before the next; a bad checksum or an unreachable source fails and
changes nothing.
"""

from __future__ import annotations

import copy
import hashlib
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from hearth.configs import k3s as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.lab import cycle
from hearth.lab.k3s_variants import (
    deploy_without_k3s,
    wait_every_node_ready,
    with_every_node_setting,
    with_server_setting,
)
from tests.lab.test_k3s import k3s_hosts, nodes, ready

pytestmark = pytest.mark.slow_scenario


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    if not lab.local:
        pytest.skip("re-deploys with changed settings: only on a local lab")
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.k3s is None:
        pytest.skip("the inventory has no k3s section")
    return inventory


def _unit_time(lab: Any, inv: Inventory, name: str, prop: str) -> int:
    unit = configs.service(inv, name)
    return int(lab.host(name).check_output(f"systemctl show -p {prop} --value {unit}"))


def clock_offsets_us(lab: Any, names: list[str]) -> dict[str, int]:
    """What to add to each machine's CLOCK_MONOTONIC to read it on this controller's.

    Containers share the controller's clock (offset ~0); a VM, like any real host, has a
    clock of its own, so restart times of different machines are compared only after this.
    One SSH round trip of uncertainty (milliseconds; k3s restarts are seconds apart).
    """
    offsets = {}
    for name in names:
        host = lab.host(name)
        before = time.monotonic_ns() // 1000
        theirs = int(host.check_output("python3 -c 'import time; print(time.monotonic_ns() // 1000)'"))
        after = time.monotonic_ns() // 1000
        offsets[name] = (before + after) // 2 - theirs
    return offsets


def started_us(lab: Any, inv: Inventory, name: str) -> int:
    """When the node's k3s process started (CLOCK_MONOTONIC of that machine)."""
    return _unit_time(lab, inv, name, "ExecMainStartTimestampMonotonic")


def active_us(lab: Any, inv: Inventory, name: str) -> int:
    """When the node's k3s unit became active (READY=1: it has joined)."""
    return _unit_time(lab, inv, name, "ActiveEnterTimestampMonotonic")


def _variant(lab: Any, tmp_path: Path, change: Any) -> Path:
    data = copy.deepcopy(yaml.safe_load(lab.inventory.read_text()))
    data = change(data) or data
    path = tmp_path / lab.inventory.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return cycle.pyinfra_inventory_for(path)


def test_changed_settings_restart_exactly_their_nodes_servers_first_one_at_a_time(
    lab: Any, inv: Inventory, tmp_path: Path,
) -> None:
    assert inv.k3s is not None
    if not configs.agents(inv):
        pytest.skip("no k3s agents in this inventory")
    before = {n: started_us(lab, inv, n) for n in k3s_hosts(inv)}
    try:
        _server_setting_then_every_node_setting(lab, inv, tmp_path, before)
    finally:
        # 3. back to the inventory under test (also when a step failed, so the tests after
        # this one start from the lab as deployed): restarts again, and the cluster is whole
        run = cycle.deploy(cycle.pyinfra_inventory_for(lab.inventory))
    assert run.ok, run.stderr_tail
    assert all(ready(n) for n in nodes(lab, inv).values())


def _server_setting_then_every_node_setting(
    lab: Any, inv: Inventory, tmp_path: Path, before: dict[str, int],
) -> None:
    hosts = k3s_hosts(inv)
    servers, agents = configs.servers(inv), configs.agents(inv)
    # 1. a server-only setting: only servers restart (each machine against its own clock)
    run = cycle.deploy(_variant(lab, tmp_path / "a", with_server_setting))
    assert run.ok, run.stderr_tail
    after = {n: started_us(lab, inv, n) for n in hosts}
    assert all(after[n] > before[n] for n in servers) and all(after[n] == before[n] for n in agents)

    # 2. a setting of every node: all restart, servers first, one at a time; time it
    start = time.monotonic()
    run = cycle.deploy(_variant(lab, tmp_path / "b", with_every_node_setting))
    assert run.ok, run.stderr_tail
    elapsed = wait_every_node_ready(inv, start)
    again = {n: started_us(lab, inv, n) for n in hosts}
    assert all(again[n] > after[n] for n in hosts)
    # the order across machines: every time read on one clock, this controller's
    offset = clock_offsets_us(lab, hosts)
    started = {n: again[n] + offset[n] for n in hosts}
    order = sorted(hosts, key=started.__getitem__)
    assert set(order[:len(servers)]) == set(servers), f"restart order {order}: servers first"
    # one at a time: each node started only after the one before was up again (Type=notify:
    # active = joined and registered, so the first server sees it Ready)
    for before_node, node in pairwise(order):
        up = active_us(lab, inv, before_node) + offset[before_node]
        assert started[node] > up, f"{node} restarted before {before_node} was up"
    print(f"\nk3s rollout: changed setting -> every node Ready: {elapsed:.1f}s "
          f"({len(hosts)} nodes; deploy {run.seconds:.1f}s)", file=sys.stderr)


def _deploy_limited(inventory_py: Path, name: str) -> tuple[int, str]:
    """pyinfra against one host (when it fails no --json results are printed): (exit code, output)."""
    proc = cycle.run_pyinfra(inventory_py, limit=name, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


def test_bad_checksum_and_unreachable_source_fail_and_change_nothing(
    lab: Any, inv: Inventory, tmp_path: Path,
) -> None:
    name = k3s_hosts(inv)[-1]
    host = lab.host(name)
    arch = inv.hosts[name].arch

    def snapshot() -> tuple[str, str, int]:
        return (host.check_output(f"sudo sha256sum {configs.BINARY} {configs.CONFIG}"),
                host.check_output(f"systemctl is-active {configs.service(inv, name)}"), started_us(lab, inv, name))

    before = snapshot()
    wrong = hashlib.sha256(b"not the release").hexdigest()

    def bad_checksum(d: dict[str, Any]) -> None:
        d["settings"]["k3s_sha256"] = {**d["settings"]["k3s_sha256"], arch: wrong}
        d["k3s"].setdefault("config", {})["kubelet-arg"] = ["max-pods=99"]  # would restart if reached

    code, output = _deploy_limited(_variant(lab, tmp_path / "sum", bad_checksum), name)
    assert code != 0, output[-2000:]  # every host refuses: pyinfra ends with "No hosts remaining"
    assert f"[{name}]" in output and "wrong sha256" in output and "nothing was changed" in output
    assert snapshot() == before

    def unreachable(d: dict[str, Any]) -> None:
        bad_checksum(d)
        d["settings"]["k3s_url"] = dead

    # the artifact server's address, on a TCP port nothing listens on
    dead = f"http://{urlparse(str(inv.settings['k3s_url'])).hostname}:9/k3s/{{version}}/{{asset}}"
    code, output = _deploy_limited(_variant(lab, tmp_path / "url", unreachable), name)
    assert code != 0, output[-2000:]
    assert f"cannot download {dead.split('{')[0]}" in output
    assert snapshot() == before
    assert host.run(f"ls {configs.BINARY}.hearth-new").rc != 0


def test_noop_rerun_with_and_without_k3s(lab: Any, inv: Inventory, tmp_path: Path) -> None:
    """What k3s adds to a no-op re-run: the same lab, the same minute, deploy.py with and without it."""
    without = deploy_without_k3s(tmp_path / "deploy_without_k3s.py")
    inv_py = cycle.pyinfra_inventory_for(lab.inventory)
    runs = {"with k3s": cycle.deploy(inv_py), "without k3s": cycle.deploy(inv_py, without)}
    for label, run in runs.items():
        assert run.ok and run.totals.get("success", 0) == 0, (label, run.changed)
    a, b = runs["with k3s"].seconds, runs["without k3s"].seconds
    print(f"\nno-op re-run, {len(inv.linux_hosts())} machines: with k3s {a:.1f}s, without {b:.1f}s "
          f"({a / b:.2f}x)", file=sys.stderr)
