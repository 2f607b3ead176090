"""The shipped Prometheus rules (promtool) and Grafana dashboard (metric names)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from hearth.gateway.cloudstate import CloudRuntime
from hearth.gateway.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "templates" / "prometheus" / "hearth-gateway.rules.yml"
RULES_TEST = ROOT / "templates" / "prometheus" / "hearth-gateway.rules.test.yml"
DASHBOARD = ROOT / "templates" / "grafana" / "hearth-gateway.json"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package 'prometheus', installed by scripts/bootstrap)")

# An identifier followed by `{`, `[`, `)` or whitespace or the end; PromQL functions,
# keywords and label names are filtered out below by the `hearth_` prefix every gateway
# metric has, and label names never appear outside braces or by(...) lists.
_IDENT = re.compile(r"(?<![\w:\"'])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\s*[{\[)]|\s|$)")
_BRACES = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


@needs_promtool
def test_rules_pass_promtool_check() -> None:
    res = _promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


@needs_promtool
def test_rules_pass_their_promtool_unit_tests() -> None:
    res = _promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_is_unit_tested_and_the_asleep_case_is_silent() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    assert alerts == {"HearthUpstreamDown", "HearthWakeFailed", "HearthQueueSaturated",
                      "HearthRouteErrorRatioHigh", "HearthTerminalRouteDown", "HearthWakeFailing"}
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    tested: dict[str, list[list[object]]] = {}
    for t in tests:
        for a in t.get("alert_rule_test", []):
            tested.setdefault(a["alertname"], []).append(a["exp_alerts"])
    for name in alerts:
        cases = tested.get(name, [])
        assert any(cases), f"{name}: no case where it fires"
        assert any(c == [] for c in cases), f"{name}: no case where it must stay silent"
    down = next(t for t in tests
                if any(a["alertname"] == "HearthUpstreamDown" for a in t["alert_rule_test"]))
    assert any('state="asleep"' in s["series"] for s in down["input_series"])


def _exported_names() -> set[str]:
    """Every sample name the gateway's registries expose (upstreams and cloud included)."""
    m = Metrics(lambda: {})
    CloudRuntime(SimpleNamespace(metrics=m, cfg=SimpleNamespace(clouds={})))
    names: set[str] = set()
    for fam in m.registry.collect():
        if fam.type == "counter":
            names |= {f"{fam.name}_total", f"{fam.name}_created"}
        elif fam.type == "histogram":
            names |= {f"{fam.name}_{s}" for s in ("bucket", "sum", "count", "created")}
        else:
            names.add(fam.name)
    return names


def _metric_names(expr: str) -> set[str]:
    bare = _GROUPING.sub(" ", _BRACES.sub("{}", expr))
    return {n for n in _IDENT.findall(bare + " ") if n.startswith("hearth_")}


def test_exported_names_include_the_scrape_time_gauges() -> None:
    names = _exported_names()
    for n in ("hearth_upstream_up", "hearth_upstream_queued", "hearth_upstream_cap",
              "hearth_cloud_alias_available", "hearth_requests_total",
              "hearth_request_latency_seconds_bucket", "hearth_spend_usd_total"):
        assert n in names
    assert "hearth_requests" not in names


def test_metric_name_parser() -> None:
    expr = ('sum by (route, le) (rate(hearth_request_latency_seconds_bucket{route="a"}[5m]))'
            ' / hearth_upstream_cap and on (upstream) hearth_upstream_up')
    assert _metric_names(expr) == {"hearth_request_latency_seconds_bucket",
                                   "hearth_upstream_cap", "hearth_upstream_up"}


def test_dashboard_uses_only_metrics_the_gateway_exports() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    exported = _exported_names()
    used: set[str] = set()
    for e in exprs:
        names = _metric_names(e)
        assert names, f"no gateway metric found in {e!r}"
        assert names <= exported, f"{e!r}: not exported by the gateway: {names - exported}"
        used |= names
    # Every family the gateway exports is on the dashboard.
    families = {n.removesuffix("_total").removesuffix("_bucket") for n in used}
    missing = {n for n in exported if not n.endswith(("_created", "_sum", "_count"))
               and n.removesuffix("_total").removesuffix("_bucket") not in families}
    assert not missing, f"exported but not on the dashboard: {sorted(missing)}"


def test_rules_use_only_metrics_the_gateway_exports() -> None:
    exported = _exported_names()
    for g in yaml.safe_load(RULES.read_text())["groups"]:
        for r in g["rules"]:
            names = _metric_names(r["expr"])
            assert names <= exported, f"{r.get('alert') or r['record']}: {names - exported}"
