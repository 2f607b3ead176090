"""The bench's scaled lab inventory is a valid inventory with unique identities."""

from pathlib import Path

import pytest
import yaml

from hearth.bench.lab import LAB_INVENTORY, scaled_inventory, table
from hearth.lab.sh import LabError
from hearth.lab.spec import load_spec


def test_twelve_machine_lab_is_valid_and_unique(tmp_path: Path) -> None:
    data = scaled_inventory(yaml.safe_load(LAB_INVENTORY.read_text()), 12)
    path = tmp_path / "lab12.yml"
    path.write_text(yaml.safe_dump(data))
    spec = load_spec(path)  # runs the inventory's own validation too
    assert len(spec.machines) == 12
    assert len({m.mac for m in spec.machines}) == 12
    assert len({m.address for m in spec.machines}) == 12
    extra = [h for n, h in data["hosts"].items() if n.startswith("lab-agent") and n != "lab-agent"]
    assert len(extra) == 8 and all(h["roles"] == ["k3s_agent"] for h in extra)
    assert data["hosts"]["lab-cp"] == yaml.safe_load(LAB_INVENTORY.read_text())["hosts"]["lab-cp"]


def test_scaling_down_is_refused() -> None:
    with pytest.raises(LabError, match="cannot scale 4 hosts down to 2"):
        scaled_inventory(yaml.safe_load(LAB_INVENTORY.read_text()), 2)


def test_table_puts_sizes_side_by_side() -> None:
    rows = [{"machines": 4, "image_cache": "warm", "lab_build_s": 2.0, "first_deploy_s": 10.0,
             "noop_rerun_s": 8.0, "noop_rerun_changes": 0},
            {"machines": 12, "image_cache": "warm", "lab_build_s": 4.0, "first_deploy_s": 30.0,
             "noop_rerun_s": 20.0, "noop_rerun_changes": 0}]  # fmt: skip
    text = table(rows)
    assert "first deploy" in text and "10.0s" in text and "30.0s" in text


def test_pyinfra_json_totals_and_error_excerpt() -> None:
    from hearth.lab import cycle

    out = ('--> noise\n{"plan": [], "results": {"operations": [{"name": "base | X", '
           '"success": ["h1"], "error": [], "no_change": ["h2"]}], "totals": {"hosts": 2, '
           '"success": 1, "error": 0, "no_change": 1}, "failed_hosts": []}}\n')  # fmt: skip
    totals, failed, changed = cycle.parse_results(out)
    assert totals == {"hosts": 2, "success": 1, "error": 0, "no_change": 1}
    assert failed == [] and changed == ["base | X on h1"]
    with pytest.raises(LabError, match="no --json results"):
        cycle.parse_results("--> Disconnecting\n")
    err = ("--> Starting operation: base | ok\n    [h] Success\n"
           "--> Starting operation: base | Sudoers\n    [h] chown: nope\n    [h] Error: executed\n")  # fmt: skip
    assert cycle.error_excerpt(err).splitlines() == [
        "--> Starting operation: base | Sudoers", "    [h] chown: nope", "    [h] Error: executed"
    ]


def test_table_marks_what_does_not_apply_and_what_failed() -> None:
    rows = [{"machines": 4, "noop_rerun_s": 8.0, "k3s_rollout_to_ready_s": 21.5},
            {"machines": 12, "noop_rerun_s": 9.0},
            {"machines": 20, "error": "converge failed"}]  # fmt: skip
    line = next(ln for ln in table(rows).splitlines() if ln.startswith("k3s change: Ready"))
    assert line.split()[3:] == ["21.5s", "-", "FAILED"]
