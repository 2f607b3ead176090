"""Lab: the vLLM units start one at a time by themselves, and a changed flag restarts one unit.

The order lives in the units (each later unit ``Wants=`` + ``After=`` the previous one,
which is active only once ready): the checks start the units the ways systemd gets
them -- several in one ``systemctl start`` in the wrong order (as at boot, one
transaction), and the last one alone -- and read the order from systemd's own
timestamps (CLOCK_MONOTONIC on the machine). A changed flag is rolled out by the
vllm role (``--limit`` to the host) from a copy of the inventory; then the original
is rolled back. Everything is derived from the inventory under test.
"""

from __future__ import annotations

import copy
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import vllm as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.lab import cycle
from tests.lab import journal
from tests.lab.test_vllm import cmdline, main_pid, show, vllm_hosts_of

pytestmark = pytest.mark.lab

TIMES = ("InactiveExitTimestampMonotonic", "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic")


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    if not lab.local:
        pytest.skip("stops, starts and re-deploys the vLLM units: only on a local lab")
    return load_inventory(lab.inventory, group_defaults())


@pytest.fixture(scope="module")
def chained(inv: Inventory) -> tuple[str, list[str]]:
    """(host, its vLLM units in start order) for the host with the most vLLM models (two at least)."""
    hosts = sorted(vllm_hosts_of(inv), key=lambda n: -len(configs.vllm_serves(inv, n)))
    if not hosts or len(configs.vllm_serves(inv, hosts[0])) < 2:
        pytest.skip("no host serves two vLLM models in this inventory")
    return hosts[0], [configs.unit_name(s) for s in configs.vllm_serves(inv, hosts[0])]


def _timeout(inv: Inventory, name: str) -> int:
    conf = configs.settings(inv, name)
    return sum(configs.ready_timeout(s, conf) + 60 for s in configs.vllm_serves(inv, name))


def _times(node: Any, units: list[str]) -> list[dict[str, int]]:
    return [{k: int(v) for k, v in show(node, unit, *TIMES, "ActiveState").items() if k in TIMES} for unit in units]


def _assert_one_at_a_time(node: Any, units: list[str]) -> None:
    times = _times(node, units)
    for unit in units:
        assert node.service(unit).is_running, unit
    for (before, earlier), (after, later) in pairwise(zip(units, times, strict=True)):
        # nothing of the later unit (not even its ExecStartPre) ran before the earlier one was ready
        assert later["InactiveExitTimestampMonotonic"] >= earlier["ActiveEnterTimestampMonotonic"] > 0, \
            (before, earlier, after, later)


def _restart_all_stopped(node: Any, units: list[str], start: list[str], timeout: int) -> str:
    """Stop every unit, then ``systemctl start`` the ``start`` ones in one call; the
    journal's cursor from before the start (read after it: nothing earlier, even
    within the same second)."""
    node.check_output(f"sudo systemctl stop {' '.join(units)}")
    for unit in units:
        assert not node.service(unit).is_running, unit
    cursor = journal.cursor(node)
    node.check_output(f"sudo timeout {timeout} systemctl start {' '.join(start)}")
    return cursor


def test_one_systemctl_start_in_the_wrong_order_starts_them_in_start_order(
    lab: Any, inv: Inventory, chained: tuple[str, list[str]],
) -> None:
    name, units = chained
    node = lab.host(name)
    _restart_all_stopped(node, units, units[::-1], _timeout(inv, name))  # one transaction, as at boot
    _assert_one_at_a_time(node, units)


def test_starting_the_last_model_alone_brings_up_the_earlier_ones_first(
    lab: Any, inv: Inventory, chained: tuple[str, list[str]],
) -> None:
    name, units = chained
    node = lab.host(name)
    cursor = _restart_all_stopped(node, units, units[-1:], _timeout(inv, name))
    _assert_one_at_a_time(node, units)
    said = journal.after(node, cursor, units=units)
    ready = [line for line in said if " ready at http://" in line]
    names = [s.name for s in configs.vllm_serves(inv, name)]
    assert all(any(line.startswith(f"{n} ready") for line in ready) for n in names), ready
    # the ready checks said so, in start order (the later units' ExecStartPre checks the earlier model too)
    first_seen = sorted(names, key=lambda n: next(i for i, line in enumerate(ready) if line.startswith(f"{n} ready")))
    assert first_seen == names, ready


def _variant(lab: Any, tmp_path: Path, name: str, serve: str, flags: dict[str, Any]) -> Path:
    data = copy.deepcopy(yaml.safe_load(lab.inventory.read_text()))
    entry = next(s for s in data["hosts"][name]["serves"] if s["name"] == serve)
    entry.setdefault("flags", {}).update(flags)
    path = tmp_path / lab.inventory.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return cycle.pyinfra_inventory_for(path)


def _roll_out(inventory_py: Path, name: str) -> tuple[dict[str, int], list[str]]:
    """The vllm role alone, on one host: (totals, changed operations)."""
    run = cycle.deploy(inventory_py, cycle.REPO / "roles/vllm/main.py", limit=name, timeout=900)
    assert run.ok, run.stderr_tail
    return run.totals, run.changed


def test_a_changed_flag_restarts_only_that_models_unit(
    lab: Any, inv: Inventory, chained: tuple[str, list[str]], tmp_path: Path,
) -> None:
    name, units = chained
    node = lab.host(name)
    serves = configs.vllm_serves(inv, name)
    target = serves[0]  # the first in start order: the later ones Want it, and must not follow it
    unit, others = units[0], units[1:]
    seed = int(target.flags.get("seed", 0)) + 4242
    before = {u: (main_pid(node, u), show(node, u, TIMES[1])[TIMES[1]]) for u in units}

    _totals, changed = _roll_out(_variant(lab, tmp_path, name, target.name, {"seed": seed}), name)
    assert any(unit in op for op in changed), changed
    assert not any(other in op for op in changed for other in others), changed
    pid = main_pid(node, unit)
    assert pid != before[unit][0]
    argv = cmdline(node, pid)
    assert argv[argv.index("--seed") + 1] == str(seed), argv
    for other in others:
        assert (main_pid(node, other), show(node, other, TIMES[1])[TIMES[1]]) == before[other], other

    # back to the inventory under test: that unit again, alone, with its exact command line
    kept = {u: main_pid(node, u) for u in others}
    _totals, changed = _roll_out(cycle.pyinfra_inventory_for(lab.inventory), name)
    assert any(unit in op for op in changed) and not any(o in op for op in changed for o in others), changed
    version = str(configs.settings(inv, name)["vllm_version"])
    assert cmdline(node, main_pid(node, unit))[1:] == configs.command(inv, name, target, version)
    assert {u: main_pid(node, u) for u in others} == kept
    assert node.file(f"{configs.UNIT_DIR}/{unit}").content_string == configs.host_files(inv, name)[1].render()
