#!/usr/bin/python3
"""hearth-ha-mqtt: curated per-host and per-GPU sensors for Home Assistant, through MQTT
discovery (issue 23 item 3, seed 002's bridge). Runs on the monitoring host; its source is
Prometheus there (which scrapes every node exporter and GPU textfile over the overlay).

The candidates come from the inventory (``/etc/hearth/ha-mqtt.json``, written by the
deploy). Each one is probed first: its series must exist in Prometheus (within the last
day, so a box asleep right now keeps its sensors); what the hardware does not expose
(a unified-memory GPU's VRAM, a container's root filesystem) gets no discovery config, so
Home Assistant's dashboards show no ghost charts. Re-probed every ``reprobe_s``; a config
this bridge published earlier and no longer wants is removed (empty retained payload).

Topics (Home Assistant's MQTT discovery, https://www.home-assistant.io/integrations/mqtt/
"MQTT Discovery"): ``<prefix>/<component>/<node_id>/<object_id>/config``, retained;
state ``hearth/<cluster>/<host>/<key>``, retained; availability: the bridge's own topic
(``online``; the broker publishes the last will ``offline`` when the bridge dies) and the
host's (``offline`` while Prometheus sees its node exporter down), both required.
Home Assistant's birth message (``<prefix>/status`` = ``online``) re-sends every config.

Depends only on the standard library and paho-mqtt (Debian's python3-paho-mqtt, 1.6 or 2.x).
The password comes from systemd's credential directory, never from the command line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

LOG = logging.getLogger("hearth-ha-mqtt")
ORIGIN = {"name": "hearth"}
PROBE_WINDOW = "1d"


def topic_root(cluster: str) -> str:
    return f"hearth/{cluster}"


def bridge_availability(cluster: str) -> str:
    return f"{topic_root(cluster)}/bridge/availability"


def host_availability(cluster: str, host: str) -> str:
    return f"{topic_root(cluster)}/{host}/availability"


def node_id(cluster: str) -> str:
    return f"hearth_{cluster}".replace("-", "_")


def object_id(sensor: dict[str, Any]) -> str:
    return sensor["id"].replace("-", "_")


def config_topic(prefix: str, cluster: str, sensor: dict[str, Any]) -> str:
    return f"{prefix}/{sensor['component']}/{node_id(cluster)}/{object_id(sensor)}/config"


def state_topic(cluster: str, sensor: dict[str, Any]) -> str:
    return f"{topic_root(cluster)}/{sensor['host']}/{sensor['key']}"


def device(cluster: str, sensor: dict[str, Any]) -> dict[str, Any]:
    """One Home Assistant device per host, and one per GPU (``via_device`` its host)."""
    host_id = f"hearth_{cluster}_{sensor['host']}"
    if sensor.get("gpu") is None:
        return {"identifiers": [host_id], "name": sensor["host"], "manufacturer": "hearth",
                "model": sensor.get("host_model", "Linux host")}  # fmt: skip
    return {"identifiers": [f"{host_id}_gpu{sensor['gpu']}"], "name": f"{sensor['host']} GPU {sensor['gpu']}",
            "manufacturer": "NVIDIA", "model": sensor["gpu_model"], "via_device": host_id}  # fmt: skip


def discovery_payload(cluster: str, sensor: dict[str, Any]) -> dict[str, Any]:
    """The discovery config of one sensor (keys of Home Assistant's MQTT sensor / binary_sensor)."""
    payload: dict[str, Any] = {
        "name": sensor["name"],
        "unique_id": f"{node_id(cluster)}_{object_id(sensor)}",
        "state_topic": state_topic(cluster, sensor),
        # a binary sensor tells the host's state itself: it follows the bridge only
        "availability": [{"topic": bridge_availability(cluster)}] + (
            [] if sensor["component"] == "binary_sensor" else [{"topic": host_availability(cluster, sensor["host"])}]),
        "availability_mode": "all",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device(cluster, sensor),
        "origin": ORIGIN,
    }  # fmt: skip
    if sensor["component"] == "binary_sensor":
        payload.update(payload_on="ON", payload_off="OFF")
    else:
        payload["state_class"] = "measurement"
        if sensor.get("unit"):
            payload["unit_of_measurement"] = sensor["unit"]
        if sensor.get("precision") is not None:
            payload["suggested_display_precision"] = sensor["precision"]
    for key in ("device_class", "icon", "entity_category"):
        if sensor.get(key):
            payload[key] = sensor[key]
    return payload


def probe_query(sensor: dict[str, Any]) -> str:
    """Prometheus expression that returns a sample iff every series the sensor needs exists."""
    parts = [f"count(last_over_time({s}[{PROBE_WINDOW}]))" for s in sensor["series"]]
    return " and ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]


def state_text(sensor: dict[str, Any], value: float | None) -> str | None:
    """The state payload: ON/OFF for a binary sensor, the rounded number, None when unknown."""
    if value is None or value != value:  # NaN
        return None
    if sensor["component"] == "binary_sensor":
        return "ON" if value >= 1 else "OFF"
    digits = int(sensor.get("precision") or 0) + 1
    rounded = round(float(value), digits)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


def first_value(result: dict[str, Any]) -> float | None:
    """The value of a Prometheus instant-query answer's first sample (None: empty)."""
    data = result.get("data", {})
    samples = data.get("result") or []
    if data.get("resultType") == "scalar":
        return float(samples[1])
    if not samples:
        return None
    return float(samples[0]["value"][1])


class Prometheus:
    def __init__(self, url: str, timeout: float = 10) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def value(self, expr: str) -> float | None:
        query = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=self.timeout) as answer:
            return first_value(json.loads(answer.read()))


class Bridge:
    """Probe, publish discovery, publish state; the MQTT client is paho's."""

    def __init__(self, config: dict[str, Any], client: Any, prometheus: Prometheus) -> None:
        self.config, self.client, self.prometheus = config, client, prometheus
        self.cluster, self.prefix = config["cluster"], config["discovery_prefix"]
        self.active: list[dict[str, Any]] = []
        self.seen: set[str] = set()  # retained configs of this node id on the broker
        self.lock = threading.Lock()
        self.connected = threading.Event()  # set at each (re)connection: probe and send the configs again

    def probe(self) -> list[dict[str, Any]]:
        found, skipped = [], []
        for sensor in self.config["candidates"]:
            try:
                present = self.prometheus.value(probe_query(sensor)) is not None
            except OSError as exc:
                LOG.warning("probe of %s failed (%s): keeping the last probe", sensor["id"], exc)
                return self.active
            (found if present else skipped).append(sensor)
        LOG.info("probed %d candidates: %d sensors, skipped (no source): %s", len(self.config["candidates"]),
                 len(found), ", ".join(s["id"] for s in skipped) or "none")  # fmt: skip
        return found

    def publish_discovery(self) -> None:
        with self.lock:
            wanted = {config_topic(self.prefix, self.cluster, s): s for s in self.active}
            for topic, sensor in wanted.items():
                self.client.publish(topic, json.dumps(discovery_payload(self.cluster, sensor)), qos=1, retain=True)
            for topic in sorted(self.seen - set(wanted)):
                LOG.info("removing %s (no longer a sensor)", topic)
                self.client.publish(topic, "", qos=1, retain=True)
            self.seen = set(wanted)

    def publish_state(self) -> None:
        hosts = {s["host"] for s in self.active}
        up: dict[str, bool] = {}
        for host in sorted(hosts):
            value = self.prometheus.value(f'max(up{{job="hearth-node",host="{host}"}})')
            up[host] = value is not None and value >= 1
            self.client.publish(host_availability(self.cluster, host), "online" if up[host] else "offline",
                                qos=1, retain=True)  # fmt: skip
        for sensor in self.active:
            if not up.get(sensor["host"]) and sensor["component"] != "binary_sensor":
                continue  # unavailable in Home Assistant; keep its last value
            text = state_text(sensor, self.prometheus.value(sensor["query"]))
            if text is not None:
                self.client.publish(state_topic(self.cluster, sensor), text, qos=1, retain=True)

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        if message.topic == f"{self.prefix}/status":
            if message.payload == b"online":
                LOG.info("Home Assistant came online: sending the discovery configs again")
                threading.Thread(target=self.publish_discovery, daemon=True).start()
        elif message.retain and message.payload:
            with self.lock:
                self.seen.add(message.topic)

    def on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, *_rest: Any) -> None:
        if getattr(reason, "is_failure", reason != 0):
            LOG.error("broker refused the connection: %s", reason)
            return
        LOG.info("connected to %s:%s", self.config["broker"]["host"], self.config["broker"]["port"])
        client.subscribe([(f"{self.prefix}/status", 1), (f"{self.prefix}/+/{node_id(self.cluster)}/+/config", 1)])
        client.publish(bridge_availability(self.cluster), "online", qos=1, retain=True)
        self.connected.set()


def make_client(config: dict[str, Any], password: str | None) -> Any:
    import paho.mqtt.client as mqtt

    client_id = f"hearth-ha-mqtt-{config['cluster']}"
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)  # paho 2.x
    except AttributeError:
        client = mqtt.Client(client_id=client_id)  # paho 1.x (Debian 12)
    broker = config["broker"]
    if broker.get("user"):
        client.username_pw_set(broker["user"], password)
    if broker.get("tls"):
        client.tls_set(ca_certs=broker.get("ca_file"))
    client.will_set(bridge_availability(config["cluster"]), "offline", qos=1, retain=True)
    client.reconnect_delay_set(1, 60)
    return client


def read_password() -> str | None:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    path = os.path.join(directory, "password") if directory else None
    if path and os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="/etc/hearth/ha-mqtt.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with open(args.config) as f:
        config = json.load(f)
    client = make_client(config, read_password())
    bridge = Bridge(config, client, Prometheus(config["prometheus"]))
    client.on_connect, client.on_message = bridge.on_connect, bridge.on_message
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    broker = config["broker"]
    client.connect_async(broker["host"], int(broker["port"]), keepalive=60)
    client.loop_start()
    next_probe = 0.0
    while not stop.is_set():
        try:
            if client.is_connected() and (bridge.connected.is_set() or time.monotonic() >= next_probe):
                bridge.connected.clear()
                time.sleep(1)  # the broker's retained configs of this node id arrive first
                bridge.active = bridge.probe()
                bridge.publish_discovery()
                next_probe = time.monotonic() + int(config["reprobe_s"])
            if client.is_connected():
                bridge.publish_state()
        except OSError as exc:
            LOG.warning("Prometheus did not answer (%s); next try in %ss", exc, config["interval_s"])
        stop.wait(int(config["interval_s"]) if client.is_connected() else 2)
    if client.is_connected():  # a clean stop says offline itself (the last will is for a death)
        try:
            client.publish(bridge_availability(config["cluster"]), "offline", qos=1, retain=True).wait_for_publish(5)
        except (RuntimeError, ValueError) as exc:
            LOG.warning("could not say offline: %s", exc)
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
