"""Lab: the monitoring host (issue 23 item 2) -- Debian's Prometheus scrapes every target
the inventory implies over the overlay and each one is up; Alertmanager answers; both
listen on the overlay address only. Skips when the inventory has no monitoring host
(inventory/lab2.yml has one; lab.yml does not, for CI time)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hearth.configs import monitoring as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from tests.lab.test_telemetry import fetch

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.monitoring is None:
        pytest.skip("no monitoring host in this inventory")
    return inventory


def peer(inv: Inventory) -> str:
    assert inv.monitoring is not None
    return next(n for n in inv.linux_hosts() if n != inv.monitoring.host and not inv.hosts[n].sleep.sleeps)


def api(lab: Any, inv: Inventory, path: str) -> Any:
    assert inv.monitoring is not None
    mon = inv.hosts[inv.monitoring.host]
    rc, body = fetch(lab.host(peer(inv)), f"http://{mon.overlay_ip}:{inv.monitoring.prometheus_port}{path}")
    assert rc == 0, f"Prometheus did not answer {path} over the overlay"
    return json.loads(body)["data"]


def test_every_target_is_up(lab: Any, inv: Inventory) -> None:
    expected = {(job["job_name"], t) for job in configs.scrape_configs(inv)
                for group in job["static_configs"] for t in group["targets"]}  # fmt: skip
    end, bad = time.monotonic() + 180, ["none yet"]
    while time.monotonic() < end:
        targets = api(lab, inv, "/api/v1/targets?state=active")["activeTargets"]
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t for t in targets}
        bad = [f"{k}: {seen[k]['health']} {seen[k].get('lastError', '')}" if k in seen else f"{k}: not scraped"
               for k in sorted(expected) if k not in seen or seen[k]["health"] != "up"]  # fmt: skip
        if not bad:
            break
        time.sleep(5)
    assert not bad, f"targets not up after 180 s: {bad}"
    # the GPU metrics of every NVIDIA host reach Prometheus
    gpu_hosts = {n for n in inv.linux_hosts() if any(g.vendor == "nvidia" for g in inv.hosts[n].gpus)}
    result = api(lab, inv, "/api/v1/query?query=hearth_gpu_collector_success")["result"]
    assert {r["metric"]["host"] for r in result if r["value"][1] == "1"} == gpu_hosts
    # each vLLM serve's own series (vLLM 0.11's names) reach Prometheus under its served name
    vllm = {group["labels"]["serve"] for job in configs.scrape_configs(inv) if job["job_name"] == "hearth-vllm"
            for group in job["static_configs"]}  # fmt: skip
    for name in ("vllm:num_requests_running", "vllm:kv_cache_usage_perc"):
        result = api(lab, inv, f"/api/v1/query?query={name}")["result"]
        assert {r["metric"]["model_name"] for r in result if r["metric"]["model_name"] == r["metric"]["serve"]} == vllm


def test_rules_loaded_and_alertmanager_ready(lab: Any, inv: Inventory) -> None:
    assert inv.monitoring is not None
    groups = {g["name"] for g in api(lab, inv, "/api/v1/rules")["groups"]}
    assert {"hearth-nodes.alerts", "hearth-nodes.recording", "hearth-gateway.alerts"} <= groups
    alertmanagers = api(lab, inv, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [a["url"] for a in alertmanagers] == [
        f"http://{inv.hosts[inv.monitoring.host].overlay_ip}:{inv.monitoring.alertmanager_port}/api/v2/alerts"]
    mon = inv.hosts[inv.monitoring.host]
    rc, body = fetch(lab.host(peer(inv)), f"http://{mon.overlay_ip}:{inv.monitoring.alertmanager_port}/-/ready")
    assert rc == 0 and "OK" in body


def test_listening_on_the_overlay_only(lab: Any, inv: Inventory) -> None:
    assert inv.monitoring is not None
    node = lab.host(inv.monitoring.host)
    ip = inv.hosts[inv.monitoring.host].overlay_ip
    for port in (inv.monitoring.prometheus_port, inv.monitoring.alertmanager_port, 9094):
        lines = [line for line in node.check_output(f"ss -ltnuH 'sport = :{port}'").splitlines() if line.strip()]
        local = {line.split()[4] for line in lines}
        assert local <= {f"{ip}:{port}"}, f"port {port}: {local}"
        assert bool(local) == (port != 9094), f"port {port}: {local}"
