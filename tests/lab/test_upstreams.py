"""Lab: upstreams hearth does not install (LM Studio, any OpenAI-compatible server).

The deploy asks each one for ``/v1/models`` from the gateway host (roles/upstreams)
and says clearly when it does not answer or lacks the served name, without failing.
In the lab nothing runs such a server, so these tests start a small
OpenAI-compatible test server (``SERVER`` below, stdlib) where the inventory says
the upstream is, and check the deploy's report and the gateway routing to it.
Everything is derived from the inventory under test.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from hearth.configs import upstreams as configs
from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import upstream_name
from hearth.inventory import Inventory, load_inventory
from hearth.lab import cycle
from tests.lab.test_gateway import client_key, request
from tests.lab.test_vllm import _admin_upstreams

pytestmark = pytest.mark.lab

UNIT = "hearth-test-openai-server"
SCRIPT = "/run/hearth-test-openai-server.py"
# A test server, not a stand-in of any product: /v1/models lists the name it is given,
# chat completions answer one fixed sentence.
SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
address, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Handler(BaseHTTPRequestHandler):
    def send(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.send({"object": "list", "data": [{"id": name, "object": "model", "owned_by": "test"}]})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send({"id": "cmpl-test", "object": "chat.completion", "created": 0, "model": name,
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "answered by " + name}}]})
HTTPServer((address, port), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    if not lab.local:
        pytest.skip("starts a test server on a lab machine: local lab only")
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.gateway is None:
        pytest.skip("no gateway in this inventory")
    return inventory


@pytest.fixture(scope="module")
def check(inv: Inventory) -> configs.Check:
    """An upstream hearth does not install, on a Linux lab machine (where a test server can run)."""
    found = [c for c in configs.checks(inv) if inv.hosts[c.host].os == "linux"
             and urlsplit(c.base_url).hostname == str(inv.hosts[c.host].overlay_ip)]  # fmt: skip
    if not found:
        pytest.skip("no upstream hearth does not install on a Linux machine of this inventory")
    return found[0]


def _deploy_check(lab: Any, inv: Inventory, verbose: bool = False) -> str:
    """roles/upstreams alone on the gateway host; it must succeed whatever it finds. Its output."""
    assert inv.gateway is not None
    run = cycle.deploy(cycle.pyinfra_inventory_for(lab.inventory), cycle.REPO / "roles/upstreams/main.py",
                       limit=inv.gateway.host, verbose=verbose, timeout=600)
    assert run.ok, run.stderr_tail
    assert run.totals.get("success", 0) == 0, run.changed
    return run.output


@pytest.fixture
def server(lab: Any, inv: Inventory, check: configs.Check) -> Iterator[Any]:
    """Start the test server where the upstream is, listing ``name``; stop it afterwards."""
    node = lab.host(check.host)
    url = urlsplit(check.base_url)
    encoded = base64.b64encode(SERVER.encode()).decode()
    node.check_output(f"echo {encoded} | base64 -d | sudo tee {SCRIPT} >/dev/null")

    def start(name: str) -> None:
        node.run(f"sudo systemctl stop {UNIT}; sudo systemctl reset-failed {UNIT}")
        node.check_output(f"sudo systemd-run --unit {UNIT} -p DynamicUser=yes /usr/bin/python3 {SCRIPT} "
                          f"{url.hostname} {url.port} {shlex.quote(name)}")
        deadline = time.monotonic() + 30
        while not node.run(f"ss -Hltn 'sport = :{url.port}'").stdout.strip():
            assert time.monotonic() < deadline, node.run(f"sudo journalctl -u {UNIT} -n 20 --no-pager").stdout
            time.sleep(0.5)

    yield start
    node.run(f"sudo systemctl stop {UNIT}; sudo systemctl reset-failed {UNIT}; sudo rm -f {SCRIPT}")


def test_a_silent_upstream_is_reported_and_the_deploy_goes_on(lab: Any, inv: Inventory, check: configs.Check) -> None:
    node = lab.host(check.host)
    assert not node.run(f"ss -Hltn 'sport = :{urlsplit(check.base_url).port}'").stdout.strip(), \
        "something already answers there"
    out = _deploy_check(lab, inv)
    assert f"upstream {check.label}: {check.base_url}/v1/models does not answer from" in out, out[-3000:]


def test_an_answering_upstream_is_reported_and_routed_to(lab: Any, inv: Inventory, check: configs.Check,
                                                         server: Any) -> None:
    server(f"not-{check.serve.name}")
    out = _deploy_check(lab, inv)
    assert (f"upstream {check.label}: {check.base_url}/v1/models answers without {check.serve.name} "
            f"(lists not-{check.serve.name})") in out, out[-3000:]

    server(check.serve.name)
    out = _deploy_check(lab, inv, verbose=True)
    assert f"upstream {check.label} answers with {check.serve.name}" in out, out[-3000:]
    assert "WARNING upstream " + check.label not in out

    # the gateway routes to it: healthy on its next probe, and a chat pinned to its name lands there
    serves = inv.hosts[check.host].serves
    name = upstream_name(check.host, serves.index(check.serve), len(serves))
    deadline = time.monotonic() + 90
    while _admin_upstreams(lab, inv)[name]["state"] != "healthy":
        assert time.monotonic() < deadline, _admin_upstreams(lab, inv)[name]
        time.sleep(2)
    assert inv.gateway is not None
    sender = lab.host(next(n for n, h in inv.hosts.items()
                           if h.os == "linux" and n != inv.gateway.host and not h.sleep.sleeps))
    body = {"model": check.serve.name, "messages": [{"role": "user", "content": "hello"}]}
    status, headers, payload = request(sender, inv, "/v1/chat/completions", client_key(inv), body)
    assert status == 200, payload
    assert headers["x-hearth-upstream"] == name
    assert json.loads(payload)["choices"][0]["message"]["content"] == f"answered by {check.serve.name}"
