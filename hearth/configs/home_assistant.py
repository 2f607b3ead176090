"""Home Assistant through MQTT discovery (issue 23 item 3): the monitoring host runs
``hearth-ha-mqtt`` (``hearth.telemetry.ha_mqtt``), which reads the sensors' values from
its Prometheus and publishes them to the inventory's broker.

The candidate sensors come from the inventory: per Linux host CPU, RAM, load, root disk
and the node exporter's reachability; per NVIDIA GPU utilisation, temperature, power
draw, and its memory (VRAM used, or the unified-memory RAM pressure: both are candidates,
the probe keeps what the card reports); on the monitoring host the number of firing
alerts. Each is a Prometheus expression over series the node programs really write.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from hearth.configs import ConfigFile
from hearth.inventory import Inventory
from hearth.telemetry import ha_mqtt

PACKAGES = ["python3-paho-mqtt"]
SCRIPT = "/usr/local/libexec/hearth-ha-mqtt"
CONFIG = "/etc/hearth/ha-mqtt.json"
CONFIG_DIR = "/etc/hearth/ha-mqtt"
PASSWORD = f"{CONFIG_DIR}/password"
CA_FILE = f"{CONFIG_DIR}/ca.pem"
UNIT = "hearth-ha-mqtt.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
REPROBE_S = 600


def applies(inv: Inventory, name: str) -> bool:
    mon = inv.monitoring
    return mon is not None and mon.host == name and mon.home_assistant is not None


def _sensor(host: str, key: str, name: str, query: str, series: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": f"{host}_{key}", "host": host, "key": key, "name": name, "component": "sensor",
            "query": query, "series": series, "gpu": None, **extra}  # fmt: skip


def host_sensors(host: str) -> list[dict[str, Any]]:
    sel = f'job="hearth-node",host="{host}"'
    idle = f'node_cpu_seconds_total{{{sel},mode="idle"}}'
    avail, total = f"node_memory_MemAvailable_bytes{{{sel}}}", f"node_memory_MemTotal_bytes{{{sel}}}"
    fs_avail = f'node_filesystem_avail_bytes{{{sel},mountpoint="/"}}'
    fs_size = f'node_filesystem_size_bytes{{{sel},mountpoint="/"}}'
    pct = {"unit": "%", "precision": 0}
    return [
        {**_sensor(host, "online", "Node exporter", f"max(up{{{sel}}})", [f"up{{{sel}}}"]),
         "component": "binary_sensor", "device_class": "connectivity", "entity_category": "diagnostic"},
        _sensor(host, "cpu", "CPU", f"100 * (1 - avg(rate({idle}[2m])))", [idle], icon="mdi:cpu-64-bit", **pct),
        _sensor(host, "ram", "RAM used", f"100 * (1 - max({avail}) / max({total}))", [avail, total],
                icon="mdi:memory", **pct),
        _sensor(host, "load", "Load (1 min)", f"max(node_load1{{{sel}}})", [f"node_load1{{{sel}}}"],
                icon="mdi:gauge", precision=2),
        _sensor(host, "disk", "Disk used (/)", f"100 * (1 - max({fs_avail}) / max({fs_size}))", [fs_avail, fs_size],
                icon="mdi:harddisk", **pct),
    ]  # fmt: skip


def gpu_sensors(host: str, index: int, model: str) -> list[dict[str, Any]]:
    sel = f'host="{host}",gpu="{index}"'

    def gpu(key: str, name: str, query: str, series: list[str], **extra: Any) -> dict[str, Any]:
        return {**_sensor(host, f"gpu{index}_{key}", name, query, series, **extra), "gpu": index, "gpu_model": model}

    used, total = f"hearth_gpu_memory_used_bytes{{{sel}}}", f"hearth_gpu_memory_total_bytes{{{sel}}}"
    unified = f"hearth_gpu_unified_memory_used_ratio{{{sel}}}"
    util, temp = f"hearth_gpu_utilization_ratio{{{sel}}}", f"hearth_gpu_temperature_celsius{{{sel}}}"
    power = f"hearth_gpu_power_draw_watts{{{sel}}}"
    return [
        gpu("utilization", "Utilisation", f"100 * max({util})", [util], unit="%", precision=0,
            icon="mdi:expansion-card"),
        gpu("temperature", "Temperature", f"max({temp})", [temp], unit="°C", device_class="temperature", precision=0),
        gpu("power", "Power draw", f"max({power})", [power], unit="W", device_class="power", precision=0),
        gpu("vram", "VRAM used", f"100 * max({used}) / max({total})", [used, total], unit="%", precision=0,
            icon="mdi:memory"),
        # seed 002: the DGX Spark's unified memory: RAM pressure instead of a VRAM chart
        gpu("ram_pressure", "Memory pressure (unified RAM)", f"100 * max({unified})", [unified], unit="%",
            precision=0, icon="mdi:memory"),
    ]  # fmt: skip


def candidates(inv: Inventory) -> list[dict[str, Any]]:
    """Every sensor the inventory's hardware could have; hearth-ha-mqtt probes each first."""
    assert inv.monitoring is not None
    out: list[dict[str, Any]] = []
    for name in inv.linux_hosts():
        out += host_sensors(name)
        cards = [g for g in inv.hosts[name].gpus if g.vendor == "nvidia"]
        for index, card in enumerate(cards):
            out += gpu_sensors(name, index, card.model)
    mon = inv.monitoring.host
    firing = 'ALERTS{alertstate="firing"}'
    out.append({**_sensor(mon, "alerts_firing", "Alerts firing", f"count({firing}) or vector(0)",
                          [f'up{{job="prometheus",host="{mon}"}}'], icon="mdi:alert", precision=0)})  # fmt: skip
    return out


def config(inv: Inventory) -> dict[str, Any]:
    """/etc/hearth/ha-mqtt.json: no secret in it (the password is a systemd credential)."""
    assert inv.monitoring is not None and inv.monitoring.home_assistant is not None
    mon, ha = inv.monitoring, inv.monitoring.home_assistant
    return {
        "cluster": inv.name,
        "prometheus": f"http://{inv.hosts[mon.host].overlay_ip}:{mon.prometheus_port}",
        "broker": {"host": ha.broker, "port": ha.port, "tls": ha.tls, "user": ha.user,
                   "ca_file": CA_FILE if ha.ca_file else None},
        "discovery_prefix": ha.discovery_prefix,
        "interval_s": ha.interval_s,
        "reprobe_s": REPROBE_S,
        "candidates": candidates(inv),
    }  # fmt: skip


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not applies(inv, name):
        return []
    ha = inv.monitoring.home_assistant if inv.monitoring else None
    assert ha is not None
    return [
        ConfigFile(dest=SCRIPT, template="home_assistant/hearth-ha-mqtt.py.j2", mode="0755",
                   context={"source": inspect.getsource(ha_mqtt)}),
        ConfigFile(dest=CONFIG, template="home_assistant/ha-mqtt.json.j2",
                   context={"text": json.dumps(config(inv), indent=1, ensure_ascii=False)}),
        ConfigFile(dest=UNIT_FILE, template="home_assistant/hearth-ha-mqtt.service.j2",
                   context={"script": SCRIPT, "config": CONFIG, "password": PASSWORD if ha.password else None}),
    ]  # fmt: skip
