"""The lab checks hold for any inventory: none names a host, a port or a route of a lab shape.

A check that assumes inventory/lab.yml reports failures that are not there on a user's
cluster; the second lab shape catches that at run time, this catches it at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hearth.inventory import load_inventory
from hearth.lab import try_gateway
from hearth.lab.state import LabRecord, MachineRecord
from hearth.lab.try_gateway import TryResult, client_key, client_machine, report

REPO = Path(__file__).resolve().parents[2]
SHAPES = [REPO / "inventory" / "lab.yml", REPO / "inventory" / "lab2.yml"]
CHECKS = sorted((REPO / "tests" / "lab").glob("*.py"))


def literals(path: Path) -> set[str]:
    return set(re.findall(r"[\"']([^\"'\n]+)[\"']", path.read_text()))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda p: p.name)
def test_no_check_names_a_host_or_a_served_model_of_a_lab_shape(shape: Path) -> None:
    inv = load_inventory(shape)
    names = set(inv.hosts) | {serve.name for _, serve in inv.serves()} | set(inv.clients)
    hits = [f"{check.name}: {name}" for check in CHECKS for name in names & literals(check)]
    assert not hits


def test_the_two_shapes_differ_where_checks_could_lean_on_one() -> None:
    one, two = (load_inventory(shape) for shape in SHAPES)
    assert set(one.hosts).isdisjoint(two.hosts) and len(one.linux_hosts()) != len(two.linux_hosts())
    assert one.overlay.topology != two.overlay.topology
    assert one.overlay.interface != two.overlay.interface and one.overlay.port != two.overlay.port
    assert one.gateway and two.gateway and one.gateway.port != two.gateway.port
    assert ("k3s_server" in one.hosts[one.gateway.host].roles) != ("k3s_server" in two.hosts[two.gateway.host].roles)
    keep_alives = [{s.keep_alive for _, s in inv.serves() if s.engine == "ollama"} for inv in (one, two)]
    assert keep_alives[0] != keep_alives[1]
    assert set(one.route_upstreams()).isdisjoint(two.route_upstreams())
    assert set(one.clients).isdisjoint(two.clients) and len(two.clients) > 1


def test_try_uses_a_client_with_every_route(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-every-route\n")
    inv = load_inventory(SHAPES[1])
    clients = {name: c.model_copy(update={"key": f"file:{key}"}) if c.routes is None else c
               for name, c in inv.clients.items()}
    assert client_key(inv.model_copy(update={"clients": clients})) == "sk-every-route"


def test_try_sends_from_a_container_never_from_a_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client runs in a machine's namespace: a VM has none (its network is its own kernel's)."""
    inv = load_inventory(Path("tests/lab/kinds.yml"))
    assert inv.gateway is not None
    others = [n for n, h in inv.hosts.items() if n != inv.gateway.host and h.os == "linux"]
    vm, container = next(n for n in others if inv.hosts[n].lab.kind == "vm"), next(
        n for n in others if inv.hosts[n].lab.kind != "vm")

    def record(name: str, netns: str) -> MachineRecord:
        return MachineRecord(name=name, address="", mac="", netns=netns, veth="", dir="", base="",
                             kind="vm" if not netns else "container")

    lab = LabRecord(inventory="", bridge="", bridge_created=False, host_cidr="", broadcast="", nft_table="",
                    ssh_user="", ssh_port=22, ssh_key="", known_hosts="",
                    machines={vm: record(vm, ""), container: record(container, f"hl-{container}")})
    monkeypatch.setattr(try_gateway.machine, "power_state", lambda m: "on")  # stand-in: every machine awake
    assert client_machine(inv, lab) == container
    del lab.machines[container]
    with pytest.raises(try_gateway.LabError, match="no other lab container is on"):
        client_machine(inv, lab)


def test_try_report_says_route_upstream_and_answer_or_the_refusal() -> None:
    ok = TryResult("den-pi", "http://10.78.0.2:8081/v1", "den/auto", 200, "hello", "fast", "den-mini-0",
                   served_model="qwen2.5:7b")
    assert report(ok).splitlines()[1:] == ["route: fast   upstream: den-mini-0   model: qwen2.5:7b", "answer: hello"]
    refused = TryResult("den-pi", "http://10.78.0.2:8081/v1", "den/deep", 503, error="route deep is down")
    assert "refused: HTTP 503: route deep is down" in report(refused)


def test_try_client_reads_answer_route_and_upstream_from_a_server() -> None:
    """The embedded openai-client script against a loopback test server (stand-in for the gateway)."""
    import json
    import os
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from hearth.lab.try_gateway import run_client

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "qwen2.5:7b",
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": "hi there"}}]}).encode()
            self.send_response(200)
            for key, value in (("Content-Type", "application/json"), ("X-Hearth-Route", "fast"),
                               ("X-Hearth-Upstream", "den-mini-0"), ("Content-Length", str(len(body)))):
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "HEARTH_TRY_URL": f"http://127.0.0.1:{server.server_port}/v1",
               "HEARTH_TRY_KEY": "k", "HEARTH_TRY_MODEL": "den/auto", "HEARTH_TRY_PROMPT": "hello",
               "HEARTH_TRY_TIMEOUT": "20"}
        data = run_client([], env, 20)
    finally:
        server.shutdown()
    assert data == {"status": 200, "answer": "hi there", "served_model": "qwen2.5:7b", "route": "fast",
                    "upstream": "den-mini-0"}
