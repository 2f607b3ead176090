"""Lab: alerts reach the operator (issue 23 item 4). A webhook receiver on this machine's
bridge address (the inventory's first receiver) records what Alertmanager sends: a serve
on a terminal route's host hangs (the healing timer only pages there), HearthServeDown
fires at the receiver after that host's healing passes (``heal_interval_s`` times
``SERVE_DOWN_PASSES``); the serve answers again, the alert resolves. Skips unless the
inventory's first receiver is a webhook on this machine's lab bridge address."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import pytest

from hearth.configs import heal as heal_configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from tests.lab.waiting import wait_for

pytestmark = pytest.mark.lab
PERIOD_S = 5  # between two looks at what the receiver got
SLACK_S = 90  # beyond the timers the inventory sets: a busy machine's late timers and scrapes


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.monitoring is None or not inventory.monitoring.receivers:
        pytest.skip("no monitoring host with receivers in this inventory")
    if not lab.local:
        pytest.skip("the receiver listens on the local lab's bridge address")
    return inventory


@pytest.fixture
def receiver(inv: Inventory) -> Iterator[list[dict[str, Any]]]:
    assert inv.monitoring is not None
    first = inv.monitoring.receivers[0]
    url = urlparse(first.url or "")
    bridge = str(next(ipaddress.ip_network(str(inv.lan.cidr)).hosts()))
    if first.kind != "webhook" or url.hostname != bridge:
        pytest.skip(f"the first receiver is not a webhook on this machine's bridge address {bridge}")
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((bridge, url.port or 80), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def arrived(received: list[dict[str, Any]], status: str, alertname: str, host: str) -> dict[str, Any] | None:
    for message in received:
        for alert in message.get("alerts", []):
            labels = alert.get("labels", {})
            if alert.get("status") == status and labels.get("alertname") == alertname and labels.get("host") == host:
                return alert
    return None


def test_a_serve_down_alert_fires_at_the_receiver_and_resolves(lab: Any, inv: Inventory, receiver: Any) -> None:
    hosts = [n for n in inv.linux_hosts() if heal_configs.applies(inv, n)
             and heal_configs.config(inv, n)["terminal_routes"]]  # fmt: skip
    if not hosts:
        pytest.skip("no GPU host serving a terminal route (the healing timer would restart the serve first)")
    name = hosts[0]
    node = lab.host(name)
    unit = heal_configs.serves(inv, name)[0]["unit"]
    pid = int(node.check_output(f"systemctl show -p MainPID --value {unit}") or 0)
    assert pid, f"{unit} is not running on {name}"
    assert inv.monitoring is not None
    notify = inv.monitoring.notify  # Alertmanager's timers, from the inventory
    period = heal_configs.interval_s(inv, name)
    rule_for = heal_configs.serve_down_after_s(inv, name)  # HearthServeDown's `for:` on this host
    evaluation = 2 * inv.monitoring.scrape_interval_s  # a scrape, then the rule's evaluation
    node.check_output(f"sudo kill -STOP {pid}")
    try:
        # heal marks it down at its next pass; the rule waits its passes; then Alertmanager's group_wait
        alert = wait_for("HearthServeDown firing at the receiver",
                         lambda: arrived(receiver, "firing", "HearthServeDown", name),
                         period + rule_for + evaluation + notify.group_wait_s + SLACK_S, PERIOD_S)  # fmt: skip
        assert alert["labels"]["unit"] == unit and alert["labels"]["severity"] == "critical"
    finally:
        node.run(f"sudo kill -CONT {pid}")
    # answered again at the next healing pass; resolved is sent at the group's next interval
    # (the inventory's monitoring.notify.group_interval_s; Alertmanager's default is 2 minutes)
    wait_for("HearthServeDown resolved at the receiver",
             lambda: arrived(receiver, "resolved", "HearthServeDown", name),
             period + evaluation + notify.group_interval_s + SLACK_S, PERIOD_S)  # fmt: skip
