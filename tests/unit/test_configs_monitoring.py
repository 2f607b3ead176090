"""The monitoring host (issue 23 item 2): Prometheus/Alertmanager files from the inventory,
validation, firewall, and Debian's promtool/amtool accepting what the deploy writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hearth.configs import firewall
from hearth.configs import monitoring as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, InventoryError, load_inventory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab2() -> Inventory:
    return load_inventory(REPO / "inventory" / "lab2.yml", group_defaults())


def files(inv: Inventory, name: str) -> dict[str, str]:
    return {f.dest: f.render() for f in configs.host_files(inv, name)}


def test_only_the_monitoring_host_gets_it(lab2: Inventory) -> None:
    assert lab2.monitoring is not None
    for name in lab2.hosts:
        assert bool(files(lab2, name)) == (name == lab2.monitoring.host)
    lab = load_inventory(REPO / "inventory" / "lab.yml", group_defaults())
    assert lab.monitoring is None and not any(files(lab, n) for n in lab.hosts)


def test_scrape_targets_come_from_the_inventory(lab2: Inventory) -> None:
    prom = yaml.safe_load(files(lab2, "den-cp")[configs.PROMETHEUS_YML])
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    nodes = {c["labels"]["host"]: c for c in jobs["hearth-node"]["static_configs"]}
    assert set(nodes) == set(lab2.linux_hosts())
    for name, cfg in nodes.items():
        assert cfg["targets"] == [f"{lab2.hosts[name].overlay_ip}:9100"]
        assert cfg["labels"]["sleeps"] == ("true" if lab2.hosts[name].sleep.sleeps else "false")
    assert jobs["hearth-gateway"]["static_configs"][0]["targets"] == ["10.78.0.2:8081"]
    vllm = [(c["targets"], c["labels"]["serve"]) for c in jobs["hearth-vllm"]["static_configs"]]
    assert vllm == [([f"{lab2.hosts[n].overlay_ip}:{s.listen_port}"], s.name)
                    for n in lab2.linux_hosts() for s in lab2.hosts[n].serves if s.engine == "vllm"]
    assert [t for t, _ in vllm] == [["10.78.0.2:8200"]]  # the gateway box's own vLLM model
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.78.0.1:9093"]
    assert prom["rule_files"] == [f"{configs.RULES_DIR}/{f}"
                                  for f in (*configs.RULE_FILES, "hearth-heal.rules.yml", configs.ROUTING_RULES)]


def test_vllm_serves_are_scraped_on_their_own_metrics() -> None:
    example = load_inventory(REPO / "inventory" / "example.yml", group_defaults())
    data = yaml.safe_load(yaml.safe_dump(example.model_dump(mode="json", exclude_none=True)))
    data["monitoring"] = {"host": example.gateway.host if example.gateway else example.linux_hosts()[0]}
    inv = Inventory.model_validate(data)
    jobs = {j["job_name"]: j for j in configs.prometheus_config(inv)["scrape_configs"]}
    vllm = jobs["hearth-vllm"]["static_configs"]
    assert vllm and all(c["targets"][0].endswith(":8000") or ":" in c["targets"][0] for c in vllm)
    assert {c["labels"]["serve"] for c in vllm} == {s.name for _, s in inv.serves() if s.engine == "vllm"}


def test_listen_on_the_overlay_only_and_no_gossip_port(lab2: Inventory) -> None:
    out = files(lab2, "den-cp")
    assert 'ARGS="--web.listen-address=10.78.0.1:9090 ' in out[configs.PROMETHEUS_DEFAULTS]
    am = out[configs.ALERTMANAGER_DEFAULTS]
    assert "--web.listen-address=10.78.0.1:9093 " in am and "--cluster.listen-address= " in am
    rules = {r.port: r for r in firewall.rules(lab2, "den-cp") if not r.why.endswith("from pods")}  # + its own pods
    for port in (9090, 9093):
        assert rules[port].sources == (str(lab2.overlay.cidr),) and rules[port].interfaces == ("wg-den",)
    assert 9090 not in {r.port for r in firewall.rules(lab2, "den-gw")}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (scripts/bootstrap installs prometheus)")
def test_promtool_accepts_the_config_and_the_rules(lab2: Inventory, tmp_path: Path) -> None:
    out = files(lab2, "den-cp")
    for dest, text in out.items():
        target = tmp_path / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    config = tmp_path / configs.PROMETHEUS_YML.lstrip("/")
    data = yaml.safe_load(config.read_text())
    data["rule_files"] = [str(tmp_path / f.lstrip("/")) for f in data["rule_files"]]
    config.write_text(yaml.safe_dump(data))
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool missing (apt-get install prometheus-alertmanager)")
def test_amtool_accepts_the_alertmanager_config(lab2: Inventory, tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(files(lab2, "den-cp")[configs.ALERTMANAGER_YML])
    check = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def lab2_errors(tmp_path: Path, old: str, new: str) -> tuple[Path, list[str]]:
    """(the file, its validation errors) for lab2.yml with ``old`` (which it must hold) made ``new``."""
    text = (REPO / "inventory" / "lab2.yml").read_text()
    assert old in text
    path = tmp_path / f"bad-{len(list(tmp_path.iterdir()))}.yml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(InventoryError) as err:
        load_inventory(path, group_defaults())
    return path, err.value.lines


def test_validation_names_the_monitoring_host(tmp_path: Path) -> None:
    section = "monitoring:\n  host: den-cp\n"
    _, lines = lab2_errors(tmp_path, section, "monitoring:\n  host: nowhere\n")
    assert any("monitoring.host" in line and "no host named nowhere" in line for line in lines)
    clash, lines = lab2_errors(tmp_path, section, section + "  prometheus_port: 9100\n")
    assert any("monitoring.prometheus_port" in line and "node exporter" in line for line in lines)
    assert any(line.startswith(f"{clash}:") for line in lines)


def test_notify_timers_come_from_the_inventory(lab2: Inventory) -> None:
    route = configs.alertmanager_config(lab2)["route"]
    assert lab2.monitoring is not None and lab2.monitoring.notify.group_interval_s == 15
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("10s", "15s", "14400s")
    data = lab2.model_dump(mode="json", exclude_none=True)
    del data["monitoring"]["notify"]
    default = configs.alertmanager_config(Inventory.model_validate(data))["route"]
    assert (default["group_wait"], default["group_interval"], default["repeat_interval"]) == ("30s", "120s", "14400s")


def test_a_repeat_shorter_than_the_group_interval_is_refused(tmp_path: Path) -> None:
    bad, lines = lab2_errors(tmp_path, "    group_interval_s: 15\n",
                             "    group_interval_s: 600\n    repeat_interval_s: 300\n")  # fmt: skip
    assert any(line.startswith(f"{bad}:") and "monitoring.notify.repeat_interval_s" in line
               and "300 is shorter than group_interval_s (600)" in line for line in lines), lines


def with_receivers(lab2: Inventory, receivers: list[dict[str, object]]) -> Inventory:
    data = lab2.model_dump(mode="json", exclude_none=True)
    data["monitoring"]["receivers"] = receivers
    return Inventory.model_validate(data)


TELEGRAM = {"name": "telegram", "kind": "telegram", "bot_token": "env:HEARTH_TEST_TG", "chat_id": 12345}
HA = {"name": "home-assistant", "kind": "webhook", "url": "http://ha.lan:8123/api/webhook/hearth-alerts",
      "bearer": "file:/nonexistent/ha-token"}


def test_receivers_first_then_fallback_secrets_as_references(lab2: Inventory) -> None:
    inv = with_receivers(lab2, [TELEGRAM, HA])
    rendered = configs.alertmanager_config(inv)
    assert rendered["route"]["receiver"] == "telegram"
    assert rendered["route"]["routes"] == [{"matchers": ['hearth_route="fallback"'], "receiver": "hearth-fallback",
                                             "group_wait": "10s"}]
    telegram, fallback = rendered["receivers"]
    assert telegram["telegram_configs"][0]["bot_token"].startswith("<Telegram bot token env:HEARTH_TEST_TG")
    hook = fallback["webhook_configs"][0]
    assert hook["url"] == HA["url"] and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["credentials_file"] == f"{configs.SECRETS_DIR}/home-assistant"
    resolved = configs.alertmanager_config(inv, lambda ref: "123:SECRET")
    assert resolved["receivers"][0]["telegram_configs"][0]["bot_token"] == "123:SECRET"
    am = next(f for f in configs.host_files(inv, "den-cp") if f.dest == configs.ALERTMANAGER_YML)
    assert am.mode == "0640" and am.group == "prometheus" and "SECRET" not in am.render()


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool missing (apt-get install prometheus-alertmanager)")
def test_amtool_routes_fallback_copies_to_the_fallback(lab2: Inventory, tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(configs.alertmanager_config(with_receivers(lab2, [TELEGRAM, HA]), lambda r: "1:x")))
    assert subprocess.run(["amtool", "check-config", str(path)], capture_output=True, timeout=60).returncode == 0
    for labels, receiver in ((["alertname=HearthServeDown", "host=x"], "telegram"),
                             (["alertname=HearthAlertViaFallback", "hearth_route=fallback"], "hearth-fallback")):
        out = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={path}", *labels],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.stdout.strip() == receiver, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (scripts/bootstrap installs prometheus)")
def test_fallback_copies_fire_only_while_deliveries_fail(lab2: Inventory, tmp_path: Path) -> None:
    inv = with_receivers(lab2, [TELEGRAM, HA])
    (tmp_path / "routing.yml").write_text(yaml.safe_dump(configs.routing_rules(inv)))
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["routing.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [
            {"series": 'ALERTS{alertname="HearthServeDown",alertstate="firing",host="spark",severity="critical"}',
             "values": "1x40"},
            # Telegram fails from minute 5 to 10 (the counter grows), then works again
            {"series": 'alertmanager_notifications_failed_total{integration="telegram"}',
             "values": "0x5 1 2 3 4 5 5x30"},
            {"series": 'alertmanager_notifications_failed_total{integration="webhook"}', "values": "0x40"},
        ], "alert_rule_test": [
            {"eval_time": "3m", "alertname": "HearthAlertViaFallback", "exp_alerts": []},
            {"eval_time": "8m", "alertname": "HearthAlertViaFallback", "exp_alerts": [{
                "exp_labels": {"alertname": "HearthAlertViaFallback", "original_alert": "HearthServeDown",
                               "alertstate": "firing", "host": "spark", "severity": "critical",
                               "hearth_route": "fallback"},
                "exp_annotations": {"summary": "HearthServeDown on spark (via the fallback: telegram unreachable)"}}]},
            {"eval_time": "8m", "alertname": "HearthAlertDeliveryFailing", "exp_alerts": [{
                "exp_labels": {"severity": "critical", "hearth_route": "fallback"},
                "exp_annotations": {
                    "summary": "alerts cannot reach telegram (telegram)",
                    "description": "Alertmanager failed to deliver to telegram in the last 10 minutes; every "
                                   "firing alert now also goes to the fallback."}}]},
            {"eval_time": "30m", "alertname": "HearthAlertViaFallback", "exp_alerts": []},
        ]}]}))  # fmt: skip
    out = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert configs.routing_rules(with_receivers(lab2, [TELEGRAM])) == {"groups": []}


def test_receiver_validation(tmp_path: Path) -> None:
    text = (REPO / "inventory" / "lab2.yml").read_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(text.replace('{name: lab-fallback, kind: webhook, url: "http://192.168.78.1:9099/alerts"}',
                                "{name: lab-primary, kind: telegram, chat_id: 5}", 1))  # fmt: skip
    with pytest.raises(InventoryError) as err:
        load_inventory(bad, group_defaults())
    lines = err.value.lines
    assert any("monitoring.receivers.1.name" in line and "named twice" in line for line in lines), lines
    assert any("monitoring.receivers.1" in line and "bot_token" in line for line in lines), lines
