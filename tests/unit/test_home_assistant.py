"""Home Assistant through MQTT discovery (issue 23 item 3): candidates from the inventory,
every sensor's query over metrics that exist, the probe keeping only what the hardware
reports, discovery payloads in Home Assistant's schema, validation, and no secret in
what the deploy writes.

Home Assistant's MQTT discovery schema (https://www.home-assistant.io/integrations/mqtt/,
"MQTT Discovery"): config topic ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``,
node_id and object_id of ``[a-zA-Z0-9_-]``; an entity with a ``unique_id`` and a ``device``
with ``identifiers``; ``availability`` a list of ``{topic}`` with ``availability_mode``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import home_assistant as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, InventoryError, load_inventory
from hearth.telemetry import gpu_metrics, ha_mqtt
from tests.unit.test_prometheus_node_rules import EXPORTER, METRIC, _strip, exporter_names

REPO = Path(__file__).resolve().parents[2]
TOPIC = re.compile(r"^[A-Za-z0-9_/-]+/(sensor|binary_sensor)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config$")
SENSOR_KEYS = {"name", "unique_id", "state_topic", "availability", "availability_mode", "payload_available",
               "payload_not_available", "device", "origin", "unit_of_measurement", "device_class", "state_class",
               "suggested_display_precision", "icon", "entity_category", "payload_on", "payload_off"}  # fmt: skip
UNITS = {"temperature": "°C", "power": "W"}


@pytest.fixture(scope="module")
def lab2() -> Inventory:
    return load_inventory(REPO / "inventory" / "lab2.yml", group_defaults())


def spark_like(lab2: Inventory) -> Inventory:
    """lab2 with den-mini's card a unified-memory one (seed 002's DGX Spark)."""
    data = lab2.model_dump(mode="json", exclude_none=True)
    data["hosts"]["den-mini"]["gpus"] = [{"model": "DGX Spark GB10", "vram_gb": 128, "unified_memory": True}]
    return Inventory.model_validate(data)


def test_only_the_monitoring_host_with_a_broker_gets_the_publisher(lab2: Inventory) -> None:
    assert lab2.monitoring is not None and lab2.monitoring.home_assistant is not None
    for name in lab2.hosts:
        assert bool(configs.host_files(lab2, name)) == (name == lab2.monitoring.host)
    data = lab2.model_dump(mode="json", exclude_none=True)
    del data["monitoring"]["home_assistant"]
    assert not configs.host_files(Inventory.model_validate(data), lab2.monitoring.host)


def test_candidates_come_from_the_inventory(lab2: Inventory) -> None:
    sensors = configs.candidates(lab2)
    ids = [s["id"] for s in sensors]
    assert len(ids) == len(set(ids))
    for name in lab2.linux_hosts():
        mine = {s["key"] for s in sensors if s["host"] == name}
        assert {"online", "cpu", "ram", "load", "disk"} <= mine
        cards = [g for g in lab2.hosts[name].gpus if g.vendor == "nvidia"]
        for index, card in enumerate(cards):
            gpu = [s for s in sensors if s["host"] == name and s["gpu"] == index]
            assert {s["key"] for s in gpu} == {f"gpu{index}_{k}" for k in
                                               ("utilization", "temperature", "power", "vram", "ram_pressure")}
            assert {s["gpu_model"] for s in gpu} == {card.model}
        if not cards:
            assert not [s for s in sensors if s["host"] == name and s["gpu"] is not None]
    assert {s["host"] for s in sensors} == set(lab2.linux_hosts())


@pytest.mark.skipif(EXPORTER is None, reason="prometheus-node-exporter missing (scripts/bootstrap installs it)")
def test_no_sensor_without_a_source(lab2: Inventory, tmp_path: Path) -> None:
    """Every metric a sensor reads is one Debian's node exporter (with hearth's GPU textfile)
    serves, or Prometheus's own (up, ALERTS)."""
    served = exporter_names(tmp_path) | {"up", "ALERTS"}
    for sensor in configs.candidates(spark_like(lab2)):
        for expr in [sensor["query"], *sensor["series"]]:
            names = set(METRIC.findall(_strip(expr))) | set(re.findall(r"\bALERTS\b", expr))
            assert names and names <= served, f"{sensor['id']}: {expr!r} reads {names - served}"
        for selector in sensor["series"]:  # each series it needs appears in its query
            assert selector in sensor["query"] or sensor["key"] == "alerts_firing", (sensor["id"], selector)


class FakePrometheus:
    """Answers the bridge's queries from series a real scrape would hold: hearth's GPU
    textfile rendered by gpu_metrics for each GPU host, and the node exporter's metrics
    (no root filesystem on the hosts in ``no_root_fs``, like the lab's containers)."""

    def __init__(self, inv: Inventory, unified: dict[str, set[int]], no_root_fs: set[str]) -> None:
        self.series: list[tuple[str, dict[str, str]]] = []
        for name in inv.linux_hosts():
            base = {"job": "hearth-node", "host": name}
            self.series += [("up", base), ("node_cpu_seconds_total", {**base, "mode": "idle"}),
                            ("node_memory_MemAvailable_bytes", base), ("node_memory_MemTotal_bytes", base),
                            ("node_load1", base)]  # fmt: skip
            if name not in no_root_fs:
                self.series += [(m, {**base, "mountpoint": "/"}) for m in
                                ("node_filesystem_avail_bytes", "node_filesystem_size_bytes")]  # fmt: skip
            cards = [g for g in inv.hosts[name].gpus if g.vendor == "nvidia"]
            rows = [f"{i}, NVIDIA {g.model}, GPU-{i}, 00000000:0{i}:00.0, 580.95.05, 37, "
                    + ("[N/A], [N/A]" if g.unified_memory else "1024, 24576") + ", 61, 212.45, 400.00, [N/A], [N/A]"
                    for i, g in enumerate(cards)]  # fmt: skip
            text = gpu_metrics.render(name, gpu_metrics.parse(rows), {}, unified.get(name, set()), 0.42, 1.0)
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    metric, _, rest = line.partition("{")
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', rest.rsplit("}", 1)[0]))
                    self.series.append((metric, {**labels, "job": "hearth-node"}))
        self.series.append(("up", {"job": "prometheus", "host": inv.monitoring.host if inv.monitoring else ""}))

    def exists(self, selector: str) -> bool:
        name, _, rest = selector.partition("{")
        wanted = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        return any(n == name and all(labels.get(k) == v for k, v in wanted.items()) for n, labels in self.series)

    def value(self, expr: str) -> float | None:
        probed = re.findall(r"last_over_time\((.+?)\[1d\]\)", expr)
        if probed:
            return 1.0 if all(self.exists(s) for s in probed) else None
        return 42.0


class FakeClient:
    def __init__(self) -> None:
        self.retained: dict[str, str] = {}

    def publish(self, topic: str, payload: str, qos: int = 0, retain: bool = False) -> None:
        assert retain and qos == 1
        self.retained[topic] = payload


def published(inv: Inventory, prom: FakePrometheus, client: FakeClient | None = None) -> FakeClient:
    client = client or FakeClient()
    bridge = ha_mqtt.Bridge(configs.config(inv), client, prom)  # type: ignore[arg-type]
    bridge.active = bridge.probe()
    bridge.publish_discovery()
    bridge.publish_state()
    return client


def configs_of(client: FakeClient) -> dict[str, dict[str, Any]]:
    return {t: json.loads(p) for t, p in client.retained.items() if t.endswith("/config") and p}


def test_the_probe_skips_what_the_hardware_does_not_expose(lab2: Inventory) -> None:
    inv = spark_like(lab2)
    prom = FakePrometheus(inv, {"den-mini": {0}}, no_root_fs={"den-pi"})
    client = published(inv, prom)
    ids = {p["unique_id"] for p in configs_of(client).values()}
    node = ha_mqtt.node_id(inv.name)
    # the unified-memory card: a RAM-pressure sensor, no VRAM chart; the 3090: VRAM, no RAM pressure
    assert f"{node}_den_mini_gpu0_ram_pressure" in ids and f"{node}_den_mini_gpu0_vram" not in ids
    assert f"{node}_den_rtx_gpu0_vram" in ids and f"{node}_den_rtx_gpu0_ram_pressure" not in ids
    # no root filesystem in the scrape: no disk sensor for that host only
    assert f"{node}_den_pi_disk" not in ids and f"{node}_den_cp_disk" in ids
    assert f"{node}_den_cp_alerts_firing" in ids
    # states only for the sensors that are there
    states = {t for t in client.retained if t.startswith(f"hearth/{inv.name}/") and not t.endswith("availability")}
    assert states == {p["state_topic"] for p in configs_of(client).values()}


def test_discovery_payloads_follow_home_assistants_schema(lab2: Inventory) -> None:
    inv = spark_like(lab2)
    client = published(inv, FakePrometheus(inv, {"den-mini": {0}}, set()))
    found = configs_of(client)
    assert len(found) >= 5 * len(inv.linux_hosts())
    uniques = [p["unique_id"] for p in found.values()]
    assert len(uniques) == len(set(uniques))
    bridge_topic = ha_mqtt.bridge_availability(inv.name)
    for topic, payload in found.items():
        assert TOPIC.match(topic) and topic.startswith("homeassistant/"), topic
        assert set(payload) <= SENSOR_KEYS, set(payload) - SENSOR_KEYS
        assert payload["availability"][0] == {"topic": bridge_topic} and payload["availability_mode"] == "all"
        assert payload["device"]["identifiers"] and payload["device"]["name"]
        if "device_class" in payload and payload["device_class"] in UNITS:
            assert payload["unit_of_measurement"] == UNITS[payload["device_class"]]
        if "/binary_sensor/" in topic:
            assert payload["device_class"] == "connectivity" and len(payload["availability"]) == 1
            assert client.retained[payload["state_topic"]] in ("ON", "OFF")
        else:
            assert payload["state_class"] == "measurement"
            host = payload["state_topic"].split("/")[2]
            assert payload["availability"][1] == {"topic": ha_mqtt.host_availability(inv.name, host)}
            float(client.retained[payload["state_topic"]])
        if "_gpu" in payload["unique_id"]:  # a GPU is its own device, via its host
            assert payload["device"]["via_device"].startswith(f"hearth_{inv.name}_")
    assert all(client.retained[ha_mqtt.host_availability(inv.name, n)] == "online" for n in inv.linux_hosts())


def test_a_sensor_no_longer_wanted_is_removed(lab2: Inventory) -> None:
    inv = spark_like(lab2)
    client = FakeClient()
    bridge = ha_mqtt.Bridge(configs.config(inv), client, FakePrometheus(inv, {"den-mini": {0}}, set()))  # type: ignore[arg-type]
    stale = f"homeassistant/sensor/{ha_mqtt.node_id(inv.name)}/gone_host_cpu/config"
    bridge.on_message(None, None, type("M", (), {"topic": stale, "payload": b"{}", "retain": True})())
    bridge.active = bridge.probe()
    bridge.publish_discovery()
    assert client.retained[stale] == ""


@pytest.mark.parametrize(("value", "component", "precision", "text"), [
    (41.234, "sensor", 0, "41.2"), (40.0, "sensor", 0, "40"), (1.0, "binary_sensor", None, "ON"),
    (0.0, "binary_sensor", None, "OFF"), (None, "sensor", 0, None), (float("nan"), "sensor", 0, None)])  # fmt: skip
def test_state_text(value: float | None, component: str, precision: int | None, text: str | None) -> None:
    assert ha_mqtt.state_text({"component": component, "precision": precision}, value) == text


def test_no_secret_in_what_the_deploy_writes(lab2: Inventory) -> None:
    assert lab2.monitoring is not None and lab2.monitoring.home_assistant is not None
    files = {f.dest: f.render() for f in configs.host_files(lab2, lab2.monitoring.host)}
    config = json.loads(files[configs.CONFIG])
    assert "password" not in json.dumps(config["broker"]) and config["broker"]["user"] == "hearth"
    unit = files[configs.UNIT_FILE]
    assert f"LoadCredential=password:{configs.PASSWORD}" in unit and "DynamicUser=yes" in unit
    assert config["prometheus"] == f"http://{lab2.hosts[lab2.monitoring.host].overlay_ip}:9090"


def broken(tmp_path: Path, extra: str) -> list[str]:
    text = (REPO / "inventory" / "lab2.yml").read_text()
    section = "  home_assistant:"
    assert section in text
    bad = tmp_path / "bad.yml"
    bad.write_text(text.replace(section, section + "\n" + extra, 1))
    with pytest.raises(InventoryError) as err:
        load_inventory(bad, group_defaults())
    assert all(line.startswith(f"{bad}:") for line in err.value.lines), err.value.lines
    return err.value.lines


def test_bad_settings_are_named(tmp_path: Path) -> None:
    lines = broken(tmp_path, "    ca_file: /nonexistent/ca.pem")
    assert any("monitoring.home_assistant.ca_file" in ln and "tls: true" in ln for ln in lines), lines
    assert any("no file /nonexistent/ca.pem" in ln for ln in lines), lines
    lines = broken(tmp_path, "    discovery_prefix: home/#")
    assert any("monitoring.home_assistant.discovery_prefix" in ln for ln in lines), lines
    lines = broken(tmp_path, "    port: 0")
    assert any("monitoring.home_assistant.port" in ln for ln in lines), lines


def test_password_file_must_be_private_and_paired_with_a_user(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o644)
    text = (REPO / "inventory" / "lab2.yml").read_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(re.sub(r"password: file:\S+", f"password: file:{secret}", text))
    with pytest.raises(InventoryError) as err:
        load_inventory(bad, group_defaults())
    assert any("monitoring.home_assistant.password" in ln and "chmod 600" in ln for ln in err.value.lines)
    assert not any("s3cret" in ln for ln in err.value.lines)
    os.chmod(secret, 0o600)
    load_inventory(bad, group_defaults())
    bad.write_text(text.replace("    user: hearth\n", "", 1))
    with pytest.raises(InventoryError) as err:
        load_inventory(bad, group_defaults())
    assert any("user and password go together" in ln for ln in err.value.lines), err.value.lines
    bad.write_text(text.replace("password: file:", "password: hunter2-", 1))
    with pytest.raises(InventoryError) as err:
        load_inventory(bad, group_defaults())
    assert not any("hunter2" in ln for ln in err.value.lines), err.value.lines
