"""`hearth status`: k3s node states read from the first server (issue 13 item 4), with the
SSH command replaced (the example inventory's hosts are never contacted)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from hearth import status_k3s
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.plan_facts import ssh_argv
from hearth.status import render
from tests.gateway.standins import EXAMPLE


def _node(name: str, ready: str = "True", unschedulable: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"unschedulable": True} if unschedulable else {},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": ready}]}}


class FakeSsh:
    def __init__(self, stdout: str = "", rc: int = 0, stderr: str = "") -> None:
        self.calls: list[list[str]] = []
        self.out = subprocess.CompletedProcess([], rc, stdout, stderr)

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        return self.out


def test_node_states_by_inventory_host() -> None:
    inv = load_inventory(EXAMPLE, group_defaults())
    k3s_hosts = status_k3s.k3s_hosts(inv)
    assert inv.k3s is not None and inv.k3s.server in k3s_hosts and len(k3s_hosts) > 3
    first, second, third, *rest = k3s_hosts
    items = [_node(first), _node(second, "Unknown"), _node(third, "True", unschedulable=True),
             *(_node(h) for h in rest[1:]), _node("stray-node", "False")]
    ssh = FakeSsh(json.dumps({"kind": "NodeList", "items": items}))
    got = status_k3s.read_nodes(inv, run=ssh)
    assert got["state"] == "up" and got["error"] is None and got["server"] == inv.k3s.server
    assert got["nodes"][first] == "Ready"
    assert got["nodes"][second] == "NotReady"
    assert got["nodes"][third] == "Ready,SchedulingDisabled"
    assert got["nodes"][rest[0]] == "missing"
    assert set(got["nodes"]) == set(k3s_hosts)
    assert got["unknown_nodes"] == {"stray-node": "NotReady"}
    (argv,) = ssh.calls  # one read-only command on the first server, the one ssh line (strict host keys)
    assert argv == ssh_argv(inv, inv.k3s.server, "sudo -n k3s kubectl get nodes -o json")
    assert argv[0] == "ssh" and "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    assert argv[-2].endswith(f"@{inv.hosts[inv.k3s.server].address}")


def test_server_asleep_or_failing() -> None:
    inv = load_inventory(EXAMPLE, group_defaults())
    ssh = FakeSsh()
    got = status_k3s.read_nodes(inv, server_asleep=True, run=ssh)
    assert got["state"] == "asleep" and not ssh.calls and got["nodes"] == {}
    got = status_k3s.read_nodes(inv, run=FakeSsh(rc=255, stderr="ssh: connect to host: No route\n"))
    assert got["state"] == "down" and "No route" in got["error"]
    got = status_k3s.read_nodes(inv, run=FakeSsh(stdout="not json"))
    assert got["state"] == "down" and "no node list" in got["error"]

    def timeout(argv: list[str]) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, 15)
    got = status_k3s.read_nodes(inv, run=timeout)
    assert got["state"] == "down" and "TimeoutExpired" in got["error"]


def test_render_shows_node_states() -> None:
    report = {"inventory": "x", "ok": True, "k3s": {"error": None, "unknown_nodes": {"stray": "NotReady"}},
              "tiers": {"core": [], "inference": [], "infrastructure": [
                  {"name": "cp", "state": "up", "address": "10.0.0.1", "k3s": "server", "k3s_node": "Ready"},
                  {"name": "gpu", "state": "asleep", "address": "10.0.0.2", "k3s": "agent", "k3s_node": "NotReady"},
                  {"name": "nas", "state": "up", "address": "10.0.0.3", "k3s": None, "k3s_node": None}]}}
    text = render(report)
    assert "k3s server Ready" in text and "k3s agent NotReady" in text
    assert "k3s node stray (NotReady): not in the inventory" in text
    report["k3s"] = {"error": "cp: Permission denied", "unknown_nodes": {}}
    assert "k3s nodes: cp: Permission denied" in render(report)
