"""Lab: Home Assistant hears about the nodes through MQTT discovery (issue 23 item 3).

Real: Debian's mosquitto (on this machine, bound to the lab bridge address only, with a
password file made from the inventory's secret), the monitoring host's hearth-ha-mqtt
(Debian's python3-paho-mqtt) reading the real Prometheus, and a paho subscriber here.
The broker is the inventory's ``monitoring.home_assistant.broker``; the check skips unless
that is this machine's lab bridge address. Discovery payloads are checked against Home
Assistant's MQTT discovery schema (https://www.home-assistant.io/integrations/mqtt/,
"MQTT Discovery"); what the sensors should be is derived from the inventory and, for the
root-disk sensor, from what Prometheus holds. The publisher is killed once: the broker's
last will marks it offline, systemd brings it back online. The broker stops at the end;
the publisher keeps retrying, as it did before this check.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import home_assistant as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory, resolve_secret
from hearth.telemetry import ha_mqtt
from tests.lab.test_telemetry import fetch

pytestmark = pytest.mark.lab
mqtt = pytest.importorskip("paho.mqtt.client")
TOPIC = re.compile(r"^[A-Za-z0-9_/-]+/(sensor|binary_sensor)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config$")


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.monitoring is None or inventory.monitoring.home_assistant is None:
        pytest.skip("no monitoring.home_assistant in this inventory")
    if not lab.local:
        pytest.skip("the broker runs on the local lab's bridge address")
    bridge = str(next(ipaddress.ip_network(str(inventory.lan.cidr)).hosts()))
    if inventory.monitoring.home_assistant.broker != bridge:
        pytest.skip(f"the broker is not this machine's bridge address {bridge}")
    return inventory


@pytest.fixture(scope="module")
def broker(inv: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    assert inv.monitoring is not None and inv.monitoring.home_assistant is not None
    ha = inv.monitoring.home_assistant
    password = resolve_secret(ha.password) if ha.password else None
    work = tmp_path_factory.mktemp("mosquitto")
    lines = [f"listener {ha.port} {ha.broker}", "persistence false", "user root", "log_dest stderr"]
    if password is not None:
        assert ha.user is not None
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(work / "passwd"), ha.user, password], check=True,
                       capture_output=True)  # fmt: skip
        (work / "passwd").chmod(0o600)
        lines += ["allow_anonymous false", f"password_file {work / 'passwd'}"]
    else:
        lines += ["allow_anonymous true"]
    (work / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    log = (work / "mosquitto.log").open("w")
    proc = subprocess.Popen(["mosquitto", "-c", str(work / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((ha.broker, ha.port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (work / "mosquitto.log").read_text()
                assert time.monotonic() < deadline, "mosquitto did not listen within 15 s"
                time.sleep(0.2)
        yield {"host": ha.broker, "port": ha.port, "user": ha.user, "password": password,
               "prefix": ha.discovery_prefix, "log": work / "mosquitto.log"}  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


class Subscriber:
    """Every message on the discovery prefix and hearth's topics: the last payload per topic,
    and each payload seen on a topic in order."""

    def __init__(self, broker: dict[str, Any], cluster: str) -> None:
        self.last: dict[str, str] = {}
        self.history: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hearth-lab-subscriber")
        if broker["user"]:
            self.client.username_pw_set(broker["user"], broker["password"])
        topics = [(f"{broker['prefix']}/#", 1), (f"hearth/{cluster}/#", 1)]
        self.client.on_connect = lambda c, *_: c.subscribe(topics)
        self.client.on_message = self.on_message
        self.client.connect(broker["host"], broker["port"], keepalive=30)
        self.client.loop_start()

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self.lock:
            text = message.payload.decode()
            self.last[message.topic] = text
            self.history.setdefault(message.topic, []).append(text)

    def wait(self, what: str, check: Any, deadline_s: float) -> Any:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self.lock:
                value = check()
            if value:
                return value
            time.sleep(1)
        with self.lock:
            seen = sorted(self.last)
        raise AssertionError(f"not within {deadline_s:.0f}s: {what}; topics seen: {seen}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="module")
def subscriber(inv: Inventory, broker: dict[str, Any]) -> Iterator[Subscriber]:
    sub = Subscriber(broker, inv.name)
    try:
        yield sub
    finally:
        sub.close()


def prometheus(lab: Any, inv: Inventory, expr: str) -> list[dict[str, Any]]:
    assert inv.monitoring is not None
    mon = inv.monitoring
    url = f"http://{inv.hosts[mon.host].overlay_ip}:{mon.prometheus_port}/api/v1/query?query="
    from urllib.parse import quote

    rc, body = fetch(lab.host(mon.host), url + quote(expr))
    assert rc == 0, f"Prometheus did not answer {expr}"
    return json.loads(body)["data"]["result"]


def expected_ids(lab: Any, inv: Inventory) -> tuple[set[str], set[str]]:
    """(sensors that must be there, sensors that must not), from the inventory and Prometheus."""
    must, never = set(), set()
    rooted = {r["metric"]["host"] for r in prometheus(lab, inv, 'node_filesystem_size_bytes{mountpoint="/"}')}
    for name in inv.linux_hosts():
        must |= {f"{name}_{k}" for k in ("online", "cpu", "ram", "load")}
        (must if name in rooted else never).add(f"{name}_disk")
        cards = [g for g in inv.hosts[name].gpus if g.vendor == "nvidia"]
        for i, card in enumerate(cards):
            must |= {f"{name}_gpu{i}_{k}" for k in ("utilization", "temperature", "power")}
            memory, other = ("ram_pressure", "vram") if card.unified_memory else ("vram", "ram_pressure")
            must.add(f"{name}_gpu{i}_{memory}")
            never.add(f"{name}_gpu{i}_{other}")
    assert inv.monitoring is not None
    must.add(f"{inv.monitoring.host}_alerts_firing")
    return must, never


def test_discovery_and_state_reach_the_broker(lab: Any, inv: Inventory, subscriber: Subscriber,
                                              broker: dict[str, Any]) -> None:  # fmt: skip
    node = ha_mqtt.node_id(inv.name)
    must, never = expected_ids(lab, inv)
    want = {f"{node}_{i.replace('-', '_')}" for i in must}
    unwanted = {f"{node}_{i.replace('-', '_')}" for i in never}

    def discovered() -> dict[str, dict[str, Any]]:
        found = {t: json.loads(p) for t, p in subscriber.last.items()
                 if t.startswith(f"{broker['prefix']}/") and t.endswith("/config") and p}  # fmt: skip
        states = [p["state_topic"] for p in found.values()]
        ids = {p["unique_id"] for p in found.values()}
        return found if want <= ids and all(s in subscriber.last for s in states) else {}

    # the publisher was retrying since the deploy (at most 60 s between attempts)
    found = subscriber.wait(f"discovery configs and states of {sorted(want)}", discovered, 150)
    ids = {p["unique_id"] for p in found.values()}
    assert not ids & unwanted, f"ghost sensors: {sorted(ids & unwanted)}"
    assert len(ids) == len(found), "a unique_id is used twice"
    bridge_topic = ha_mqtt.bridge_availability(inv.name)
    assert subscriber.last[bridge_topic] == "online"
    for topic, payload in found.items():
        assert TOPIC.match(topic), topic
        assert {"name", "unique_id", "state_topic", "availability", "device"} <= set(payload)
        assert payload["availability"][0] == {"topic": bridge_topic} and payload["availability_mode"] == "all"
        assert payload["device"]["identifiers"] and payload["device"]["name"]
        state = subscriber.last[payload["state_topic"]]
        if "/binary_sensor/" in topic:
            assert state in ("ON", "OFF")
        else:
            assert payload["state_class"] == "measurement"
            float(state)
    for name in inv.linux_hosts():
        availability = subscriber.last.get(ha_mqtt.host_availability(inv.name, name))
        assert availability in ("online", "offline"), name
        if not inv.hosts[name].sleep.sleeps:
            assert availability == "online", f"{name}: node exporter up, yet {availability}"
            assert subscriber.last[f"hearth/{inv.name}/{name}/online"] == "ON"
            ram = float(subscriber.last[f"hearth/{inv.name}/{name}/ram"])
            assert 0 < ram < 100, (name, ram)
    # a GPU's temperature is what Prometheus holds for it (the stand-in nvidia-smi's figure)
    for sample in prometheus(lab, inv, "hearth_gpu_temperature_celsius"):
        host, gpu = sample["metric"]["host"], sample["metric"]["gpu"]
        if inv.hosts[host].sleep.sleeps:
            continue
        topic = f"hearth/{inv.name}/{host}/gpu{gpu}_temperature"
        assert float(subscriber.last[topic]) == pytest.approx(float(sample["value"][1]), abs=1), topic
    # the broker saw the password-protected login (no anonymous client)
    assert "hearth-ha-mqtt" in broker["log"].read_text()


def test_the_broker_marks_a_dead_publisher_offline(lab: Any, inv: Inventory, subscriber: Subscriber) -> None:
    assert inv.monitoring is not None
    node = lab.host(inv.monitoring.host)
    topic = ha_mqtt.bridge_availability(inv.name)
    subscriber.wait("the publisher online", lambda: subscriber.last.get(topic) == "online", 150)
    before = len(subscriber.history[topic])
    try:
        node.check_output(f"sudo systemctl kill --kill-whom=main -s SIGKILL {configs.UNIT}")
        subscriber.wait("the last will (offline) after the publisher died",
                        lambda: "offline" in subscriber.history[topic][before:], 30)  # fmt: skip
        # Restart=always, RestartSec=10: back without anyone's help
        history = subscriber.history[topic]
        subscriber.wait("online again after systemd restarted it",
                        lambda: history[-1] == "online" and len(history) > before + 1, 60)  # fmt: skip
    finally:
        node.run(f"sudo systemctl start {configs.UNIT}")
    assert node.service(configs.UNIT.removesuffix(".service")).is_running


def test_the_publisher_runs_without_privileges_and_the_password_stays_private(lab: Any, inv: Inventory) -> None:
    assert inv.monitoring is not None and inv.monitoring.home_assistant is not None
    node = lab.host(inv.monitoring.host)
    if inv.monitoring.home_assistant.password:
        assert node.check_output(f"sudo stat -c '%a %U' {configs.PASSWORD}") == "600 root"
        password = resolve_secret(inv.monitoring.home_assistant.password)
        journal = node.check_output(f"sudo journalctl -u {configs.UNIT} --no-pager -o cat")
        assert password not in journal and password not in node.file(configs.CONFIG).content_string
    pid = node.check_output(f"systemctl show -p MainPID --value {configs.UNIT}")
    assert pid not in ("", "0")
    assert node.check_output(f"ps -o user= -p {pid}") != "root"
    assert Path(configs.SCRIPT).name in node.check_output(f"ps -o args= -p {pid}")
