"""The node rules (issue 23 item 2): promtool check and unit tests, and every hearth_gpu_* /
hearth_heal_* metric they use is one the node programs really write."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from hearth.telemetry import gpu_metrics, heal
from tests.unit.test_prometheus_rules import _promtool, needs_promtool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "templates" / "prometheus" / "hearth-nodes.rules.yml"
RULES_TEST = ROOT / "templates" / "prometheus" / "hearth-nodes.rules.test.yml"
NAME = re.compile(r"(?<![\w:])(hearth_(?:gpu|heal)_[a-z_]+)(?!:)")  # not inside a recording rule's name


@needs_promtool
def test_node_rules_pass_promtool_check_and_their_tests() -> None:
    check = _promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
    test = _promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_node_alert_is_tested_firing_and_silent() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert {"HearthNodeDown", "HearthGpuHot", "HearthGpuErrors", "HearthDiskNearlyFull", "HearthServeDown"} <= alerts
    cases: dict[str, list[object]] = {}
    for t in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for a in t.get("alert_rule_test", []):
            cases.setdefault(a["alertname"], []).append(a["exp_alerts"])
    for name in alerts:
        assert any(cases.get(name, [])), f"{name}: no case where it fires"
    quiet = ("HearthNodeDown", "HearthGpuHot", "HearthGpuErrors", "HearthDiskNearlyFull", "HearthHealBudgetExhausted")
    for name in quiet:
        assert [] in cases[name], f"{name}: no case where it must stay silent"


def test_rules_use_only_metrics_the_node_programs_write() -> None:
    written = set(gpu_metrics.HELP)
    cfg = {"host": "h", "terminal_routes": [], "serves": [{"unit": "u"}]}
    written |= {line.split()[2] for line in heal.render(cfg, {}, heal.Report(), 0).splitlines()
                if line.startswith("# TYPE")}  # fmt: skip
    used = set(NAME.findall(RULES.read_text()))
    assert used and used <= written, used - written
