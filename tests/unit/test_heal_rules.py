"""HearthServeDown waits for the healing timer of the serve's own host: silent for
``SERVE_DOWN_PASSES`` healing periods, one rule per period in the inventory
(hearth/configs/heal.py ``serve_down_rules``), checked with Debian's promtool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hearth.configs import heal as configs
from hearth.configs import monitoring
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from tests.unit.test_prometheus_rules import _promtool, needs_promtool

REPO = Path(__file__).resolve().parents[2]


def lab2(tmp_path: Path, **periods: int) -> Inventory:
    """inventory/lab2.yml with ``heal_interval_s`` set on the hosts named."""
    data = yaml.safe_load((REPO / "inventory" / "lab2.yml").read_text())
    for name, period in periods.items():
        data["hosts"][name].setdefault("settings", {})["heal_interval_s"] = period
    path = tmp_path / "lab2.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_inventory(path, group_defaults())


def rules(inv: Inventory) -> list[dict[str, Any]]:
    return [r for g in configs.serve_down_rules(inv)["groups"] for r in g["rules"]]


def test_one_rule_per_healing_period_naming_its_hosts(tmp_path: Path) -> None:
    inv = lab2(tmp_path)
    healed = [n for n in inv.linux_hosts() if configs.applies(inv, n)]
    assert healed == ["den-gw", "den-rtx", "den-mini"]
    fast, default = rules(inv)  # lab2.yml heals den-rtx every 20 s, the rest at the default minute
    assert (fast["for"], fast["expr"]) == ("60s", 'hearth_heal_serve_up{host=~"den-rtx"} == 0')
    assert (default["for"], default["expr"]) == ("180s", 'hearth_heal_serve_up{host=~"den-gw|den-mini"} == 0')
    (one,) = rules(lab2(tmp_path, **{"den-rtx": 60}))  # every host at group_data/heal.py's 60 s
    assert one["for"] == "180s" and one["expr"] == 'hearth_heal_serve_up{host=~"den-gw|den-rtx|den-mini"} == 0'
    assert "3 minutes (3 healing passes)" in one["annotations"]["description"]

    fast, default, slow = rules(lab2(tmp_path, **{"den-gw": 20, "den-rtx": 300}))
    assert (fast["for"], fast["expr"]) == ("60s", 'hearth_heal_serve_up{host=~"den-gw"} == 0')
    assert (default["for"], default["expr"]) == ("180s", 'hearth_heal_serve_up{host=~"den-mini"} == 0')
    assert (slow["for"], slow["expr"]) == ("900s", 'hearth_heal_serve_up{host=~"den-rtx"} == 0')
    assert "60 seconds (3 healing passes)" in fast["annotations"]["description"]
    assert "15 minutes (3 healing passes)" in slow["annotations"]["description"]


def test_the_rule_and_the_timer_read_the_same_period(tmp_path: Path) -> None:
    inv = lab2(tmp_path, **{"den-rtx": 20})
    for rule in rules(inv):
        hosts = rule["expr"].split('"')[1].split("|")
        for host in hosts:
            timer = next(f for f in configs.host_files(inv, host) if f.dest == configs.TIMER).render()
            assert f"OnUnitActiveSec={int(rule['for'][:-1]) // configs.SERVE_DOWN_PASSES}s" in timer


def test_no_healed_host_no_rule() -> None:
    cpu_only = load_inventory(REPO / "tests" / "lab" / "kinds-arm64.yml", group_defaults())  # Ollama on a Pi
    assert any(h.serves for h in cpu_only.hosts.values()) and not any(h.gpus for h in cpu_only.hosts.values())
    assert configs.serve_down_rules(cpu_only) == {"groups": []}


def test_the_monitoring_host_writes_and_loads_them(tmp_path: Path) -> None:
    inv = lab2(tmp_path, **{"den-rtx": 20})
    assert inv.monitoring is not None
    out = {f.dest: f.render() for f in monitoring.host_files(inv, inv.monitoring.host)}
    dest = f"{monitoring.RULES_DIR}/{configs.RULES}"
    assert yaml.safe_load(out[dest]) == configs.serve_down_rules(inv)
    assert dest in yaml.safe_load(out[monitoring.PROMETHEUS_YML])["rule_files"]
    nodes = yaml.safe_load(out[f"{monitoring.RULES_DIR}/hearth-nodes.rules.yml"])
    assert "HearthServeDown" not in {r.get("alert") for g in nodes["groups"] for r in g["rules"]}


@needs_promtool
def test_each_host_pages_after_its_own_passes_and_a_restart_in_time_never(tmp_path: Path) -> None:
    """den-rtx heals every 20 s (pages after 60 s), den-gw and den-mini every 60 s (after 3 minutes)."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(configs.serve_down_rules(lab2(tmp_path, **{"den-rtx": 20}))))

    def firing(host: str, unit: str, silent: str) -> list[dict[str, Any]]:
        return [{"exp_labels": {"severity": "critical", "host": host, "unit": unit}, "exp_annotations": {
            "summary": f"{unit} on {host} does not answer",
            "description": f"{unit} on {host} has not answered its probe for {silent} (3 healing passes): it did "
                           "not come back, or it may not be restarted (a terminal route's host). See "
                           "`journalctl -u hearth-heal` on the host."}}]

    rtx = firing("den-rtx", "ollama.service", "60 seconds")
    gw = firing("den-gw", "vllm-qwen2.5-7b-long.service", "3 minutes")
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "10s",
        "tests": [{"interval": "10s", "input_series": [
            # silent from 10 s on
            {"series": 'hearth_heal_serve_up{host="den-rtx",unit="ollama.service"}', "values": "1 0x60"},
            {"series": 'hearth_heal_serve_up{host="den-gw",unit="vllm-qwen2.5-7b-long.service"}',
             "values": "1 0x60"},
            # silent for two of its passes, then restarted by the timer
            {"series": 'hearth_heal_serve_up{host="den-mini",unit="ollama.service"}', "values": "1 0x12 1x47"},
        ], "alert_rule_test": [
            {"eval_time": "50s", "alertname": "HearthServeDown", "exp_alerts": []},
            {"eval_time": "80s", "alertname": "HearthServeDown", "exp_alerts": rtx},
            {"eval_time": "170s", "alertname": "HearthServeDown", "exp_alerts": rtx},
            {"eval_time": "200s", "alertname": "HearthServeDown", "exp_alerts": [*gw, *rtx]},
        ]}]}))  # fmt: skip
    check = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    test = _promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr
