"""The node rules (issue 23 item 2): promtool check and unit tests, and every hearth_gpu_* /
hearth_heal_* metric they use is one the node programs really write."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
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
    # HearthServeDown is generated from the healing periods: tests/unit/test_heal_rules.py
    assert {"HearthNodeDown", "HearthGpuHot", "HearthGpuErrors", "HearthDiskNearlyFull",
            "HearthServeUnitFailed", "HearthHealBudgetExhausted"} <= alerts
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


DASHBOARD = ROOT / "templates" / "grafana" / "hearth-nodes.json"
EXPORTER = shutil.which("prometheus-node-exporter")
# PromQL identifiers that are metric names: node_*, hearth_*, up, and recording rules (a:b:c)
METRIC = re.compile(r"(?<![\w:\"'$])((?:node_|hearth_)[a-zA-Z0-9_]+|up|[a-z_]+:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+)"
                    r"(?=[\s{\[)]|$)")


def exporter_names(tmp_path: Path) -> set[str]:
    """Every metric name a real node exporter (Debian's) serves with hearth's textfiles in place."""
    assert EXPORTER is not None
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    rows = gpu_metrics.parse([  # a card with its own memory and ECC, and a unified-memory one
        "0, NVIDIA A100-SXM4-80GB, GPU-1, 00000000:01:00.0, 535.261.03, 37, 1024, 81920, 61, 212.45, 400.00, 0, 0",
        "1, NVIDIA GB10, GPU-2, 0000000F:01:00.0, 580.95.05, 91, [N/A], [N/A], 55, 31.20, [N/A], [N/A], [N/A]"])
    (textfiles / "hearth_gpu.prom").write_text(gpu_metrics.render("h", rows, {}, set(), 0.5, 1.0))
    cfg = {"host": "h", "terminal_routes": [], "serves": [{"unit": "ollama.service"}]}
    (textfiles / "hearth_heal.prom").write_text(heal.render(cfg, {}, heal.Report(), 1.0))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
                             "--collector.cpu", "--collector.meminfo", "--collector.filesystem", "--collector.loadavg",
                             f"--collector.textfile.directory={textfiles}", "--collector.textfile"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {line.split("{")[0].split()[0] for line in text.splitlines() if line and not line.startswith("#")}


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])]


@pytest.mark.skipif(EXPORTER is None, reason="prometheus-node-exporter missing (scripts/bootstrap installs it)")
def test_dashboard_and_rules_use_only_metrics_that_exist(tmp_path: Path) -> None:
    served = exporter_names(tmp_path) | {"up"}  # up: Prometheus's own per target
    assert {"node_cpu_seconds_total", "node_filesystem_avail_bytes", "hearth_gpu_temperature_celsius",
            "hearth_heal_serve_up"} <= served  # fmt: skip
    recorded = {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r}
    # the systemd collector needs systemd as PID 1 (not here); its metric is checked in the lab
    lab_only = {"node_systemd_unit_state"}
    rules_text = " ".join(r.get("expr", "") for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"])
    for expr in [*dashboard_exprs(), rules_text]:
        names = set(METRIC.findall(_strip(expr)))
        assert names, expr
        assert names <= served | recorded | lab_only, f"{expr!r}: {names - served - recorded - lab_only}"
    assert len(dashboard_exprs()) >= 12


def _strip(expr: str) -> str:
    """Label matchers and grouping lists removed (their contents are not metric names)."""
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    return re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
