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
    assert "hearth-vllm" not in jobs  # no vLLM serve in this shape
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.78.0.1:9093"]
    assert prom["rule_files"] == [f"{configs.RULES_DIR}/{f}" for f in configs.RULE_FILES]


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
    rules = {r.port: r for r in firewall.rules(lab2, "den-cp")}
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


def test_validation_names_the_monitoring_host(tmp_path: Path) -> None:
    text = (REPO / "inventory" / "lab2.yml").read_text()
    for bad, message in (("host: den-cp\n\nhosts:", "no host named nowhere"),):
        broken = tmp_path / "bad.yml"
        broken.write_text(text.replace(bad, bad.replace("den-cp", "nowhere"), 1))
        with pytest.raises(InventoryError) as err:
            load_inventory(broken, group_defaults())
        assert any("monitoring.host" in line and message in line for line in err.value.lines), err.value.lines
    clash = tmp_path / "clash.yml"
    clash.write_text(text.replace("  host: den-cp\n\nhosts:", "  host: den-cp\n  prometheus_port: 9100\n\nhosts:", 1))
    with pytest.raises(InventoryError) as err:
        load_inventory(clash, group_defaults())
    assert any("monitoring.prometheus_port" in line and "node exporter" in line for line in err.value.lines)
    assert any(line.startswith(f"{clash}:") for line in err.value.lines)
