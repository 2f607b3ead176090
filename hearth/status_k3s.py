"""k3s node states for `hearth status` (issue 13 item 4): read-only, over SSH.

One ``k3s kubectl get nodes -o json`` on the inventory's first k3s server, as the
automation user (``sudo -n`` unless that is root), strict host-key checking with the
inventory's known_hosts (:func:`hearth.plan_facts.ssh_argv`, as `hearth kubeconfig`). Nothing is
written anywhere; a server the gateway holds asleep is not contacted.

Each node's state is its ``Ready`` condition as kubectl shows it: ``Ready`` or
``NotReady`` (``,SchedulingDisabled`` when cordoned). A host the inventory gives a k3s
role with no node of its name is ``missing``; a node no host of the inventory names is
listed apart (``unknown_nodes``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from hearth.inventory import Inventory
from hearth.plan_facts import ssh_argv

TIMEOUT_S = 15.0

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def k3s_hosts(inv: Inventory) -> list[str]:
    """Hosts the inventory makes k3s servers or agents."""
    return [n for n, h in inv.hosts.items() if h.in_k3s]


def node_state(node: dict[str, Any]) -> str:
    """``Ready`` / ``NotReady`` (kubectl's STATUS column, cordoned nodes included)."""
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    state = "Ready" if ready else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    return state


def read_nodes(inv: Inventory, *, server_asleep: bool = False, run: Runner = _run) -> dict[str, Any]:
    """``{"server", "state", "error", "nodes": {host: state}, "unknown_nodes": {node: state}}``."""
    if inv.k3s is None:
        return {"server": None, "state": "none", "error": None, "nodes": {}, "unknown_nodes": {}}
    server = inv.k3s.server
    out: dict[str, Any] = {"server": server, "state": "up", "error": None,
                           "nodes": {}, "unknown_nodes": {}}
    if server_asleep:
        return {**out, "state": "asleep", "error": f"{server} is asleep: not asked"}
    user = inv.hosts[server].ssh_user or inv.ssh.user
    command = "k3s kubectl get nodes -o json" if user == "root" else "sudo -n k3s kubectl get nodes -o json"
    try:
        done = run(ssh_argv(inv, server, command))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {**out, "state": "down", "error": f"ssh {server}: {type(exc).__name__}: {exc}"}
    if done.returncode != 0:
        lines = (done.stderr or "").strip().splitlines()
        return {**out, "state": "down",
                "error": f"{server}: {lines[-1] if lines else f'exit {done.returncode}'}"}
    try:
        items = json.loads(done.stdout).get("items") or []
        seen = {str(n["metadata"]["name"]): node_state(n) for n in items}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return {**out, "state": "down", "error": f"{server}: kubectl answered no node list ({exc})"}
    out["nodes"] = {h: seen.get(h, "missing") for h in k3s_hosts(inv)}
    out["unknown_nodes"] = {n: s for n, s in seen.items() if n not in inv.hosts}
    return out
