"""Lab: every Linux node reports its health (issue 23 item 1).

Real in the lab: Debian's prometheus-node-exporter (through the lab's apt proxy), its
systemd unit with hearth's arguments and drop-in, the textfile collector, the GPU
timer, real HTTP scrapes between machines over the WireGuard overlay, the firewall.
Stand-in: nvidia-smi (reports each machine's declared GPUs, tests/standins/nvidia-smi).
Everything expected is derived from the inventory under test.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from hearth.configs import telemetry as configs
from hearth.configs.base import settings
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.lab.artifacts.nvidia import product_name
from tests.lab.waiting import wait_for

pytestmark = pytest.mark.lab
OVERRIDE = "/etc/hearth-standin/nvidia-smi.json"


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    return load_inventory(lab.inventory, group_defaults())


def port(inv: Inventory, name: str) -> int:
    return int(settings(inv, name)["node_exporter_port"])


def peer_of(inv: Inventory, name: str) -> str:
    return next(n for n in inv.linux_hosts() if n != name and not inv.hosts[n].sleep.sleeps)


def fetch(node: Any, url: str, timeout: int = 5) -> tuple[int, str]:
    """(exit code, body) of an HTTP GET from ``node`` (python3 is on every machine)."""
    script = ("import sys, urllib.request; "
              f"sys.stdout.write(urllib.request.urlopen({url!r}, timeout={timeout}).read().decode())")  # fmt: skip
    result = node.run(f"python3 -c {json.dumps(script)}")
    return result.rc, result.stdout


LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(name, labels) -> value of an exposition page (the exporter sorts labels its own way)."""
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        out[(name, frozenset(LABEL.findall(labels)))] = float(value)
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


Wanted = dict[tuple[str, frozenset[tuple[str, str]]], float | None]  # None: any value
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape_until(node: Any, url: str, wanted: Wanted, deadline_s: float = 60) -> None:
    """Wait (bounded) until the exporter's page has every wanted sample (with its value, unless None)."""

    def missing(got: Samples) -> dict[Any, tuple[Any, Any]]:
        return {k: (v, got.get(k)) for k, v in wanted.items() if k not in got or (v is not None and got[k] != v)}

    def show(got: Samples) -> str:
        present = sorted(f"{n}{dict(ls)}" for n, ls in got if n.startswith("hearth_gpu"))
        return f"missing (want, got) {missing(got)}; hearth_gpu present: {present}"

    def scrape() -> Samples:
        rc, body = fetch(node, url)
        return samples(body) if rc == 0 else {}

    wait_for(f"{url} has every wanted sample", scrape, deadline_s, 2, done=lambda got: not missing(got), show=show)


def test_node_exporter_answers_on_the_overlay_only(lab: Any, inv: Inventory, machine: str) -> None:
    node, host = lab.host(machine), inv.hosts[machine]
    p = port(inv, machine)
    assert node.package(configs.PACKAGE).is_installed
    service = node.service(configs.SERVICE)
    assert service.is_running and service.is_enabled
    listening = node.check_output(f"ss -ltnH 'sport = :{p}'").split("\n")
    assert [line.split()[3] for line in listening if line.strip()] == [f"{host.overlay_ip}:{p}"]
    peer = lab.host(peer_of(inv, machine))
    rc, body = fetch(peer, f"http://{host.overlay_ip}:{p}/metrics")
    assert rc == 0 and "node_exporter_build_info" in body and "node_load1" in body
    assert fetch(peer, f"http://{host.address}:{p}/metrics", timeout=3)[0] != 0, "LAN address must not answer"
    # the units that matter are visible to rules (systemd collector)
    assert 'node_systemd_unit_state{name="prometheus-node-exporter.service",state="active"' in body


def test_gpu_metrics_on_every_gpu_machine(lab: Any, inv: Inventory) -> None:
    gpu_hosts = [n for n in inv.linux_hosts() if configs.nvidia_gpus(inv, n)]
    if not gpu_hosts:
        pytest.skip("no Linux host with an NVIDIA GPU in this inventory")
    for name in gpu_hosts:
        host = inv.hosts[name]
        node = lab.host(name)
        assert node.service("hearth-gpu-metrics.timer").is_enabled
        assert node.service("hearth-gpu-metrics.timer").is_running
        url = f"http://{host.overlay_ip}:{port(inv, name)}/metrics"
        nvidia = [g for g in host.gpus if g.vendor == "nvidia"]
        wanted: Wanted = {key("hearth_gpu_collector_success", host=name): 1}
        for index, gpu in enumerate(nvidia):
            labels = {"host": name, "gpu": str(index), "model": product_name(gpu.model)}
            for metric in ("hearth_gpu_temperature_celsius", "hearth_gpu_utilization_ratio",
                           "hearth_gpu_power_limit_watts", "hearth_gpu_power_draw_watts"):
                wanted[key(metric, **labels)] = None
            wanted[key("hearth_gpu_unified_memory", **labels)] = 1 if gpu.unified_memory else 0
            if not gpu.unified_memory:
                wanted[key("hearth_gpu_memory_total_bytes", **labels)] = round(gpu.vram_gb * 1024) * 1024 * 1024
        scrape_until(lab.host(peer_of(inv, name)), url, wanted)


def test_gpu_metrics_follow_the_card(lab: Any, inv: Inventory) -> None:
    """A hot card shows up within the timer's period (the stand-in reports what the test writes)."""
    name = next((n for n in inv.linux_hosts() if configs.nvidia_gpus(inv, n) and not inv.hosts[n].sleep.sleeps), None)
    if name is None:
        pytest.skip("no always-on Linux host with an NVIDIA GPU in this inventory")
    host, node = inv.hosts[name], lab.host(name)
    gpu = next(g for g in host.gpus if g.vendor == "nvidia")
    card = {"name": product_name(gpu.model), "memory_mib": round(gpu.vram_gb * 1024), "temperature_c": 93,
            "power_limit_w": 300, "power_draw_w": 287.5}
    node.check_output(f"sudo mkdir -p /etc/hearth-standin && echo {json.dumps(json.dumps([card]))} "
                      f"| sudo tee {OVERRIDE} >/dev/null")  # fmt: skip
    try:
        labels = {"host": name, "gpu": "0", "model": str(card["name"])}
        interval = int(settings(inv, name)["gpu_metrics_interval_s"])
        scrape_until(lab.host(peer_of(inv, name)), f"http://{host.overlay_ip}:{port(inv, name)}/metrics",
                     {key("hearth_gpu_temperature_celsius", **labels): 93,
                      key("hearth_gpu_power_draw_watts", **labels): 287.5},
                     deadline_s=interval * 2 + 30)  # fmt: skip
    finally:
        node.run(f"sudo rm -f {OVERRIDE}")
