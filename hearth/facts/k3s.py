"""k3s facts: a node as the cluster sees it (asked on a server with `k3s kubectl`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pyinfra.api import FactBase


def node_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Node object hearth looks at: Ready, heartbeat, labels, taints, allocatable."""
    conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    ready = conditions.get("Ready", {})
    return {
        "name": obj["metadata"]["name"],
        "ready": ready.get("status") == "True",
        "heartbeat": ready.get("lastHeartbeatTime"),
        "labels": dict(obj["metadata"].get("labels") or {}),
        "taints": [taint_text(t) for t in obj.get("spec", {}).get("taints") or []],
        "allocatable": dict(obj.get("status", {}).get("allocatable") or {}),
    }


def taint_text(taint: dict[str, str]) -> str:
    """A Node taint as `key[=value]:Effect` (the form config.yaml and kubectl use)."""
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint['key']}{value}:{taint['effect']}"


def heartbeat_seconds(value: str | None) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else 0.0


class K3sNode(FactBase[dict[str, Any] | None]):
    """
    Node ``node`` as the cluster reports it (ask a k3s server), or ``None`` when the
    cluster does not know it or the API does not answer:
    ``{"name", "ready", "heartbeat", "labels", "taints", "allocatable"}``.

    .. code:: python

        server.get_fact(K3sNode, node="lab-vllm", _sudo=True)
    """

    def command(self, node: str) -> str:
        return f"k3s kubectl get node {node} -o json 2>/dev/null || true"

    def requires_command(self, node: str) -> str:
        return "k3s"

    def process(self, output: list[str]) -> dict[str, Any] | None:
        text = "\n".join(output).strip()
        if not text:
            return None
        try:
            return node_summary(json.loads(text))
        except (ValueError, KeyError):
            return None


class FileDigest(FactBase[dict[str, Any] | None]):
    """
    A file's sha256 and mode in one round trip (``{"sha256": "...", "mode": 600}``, the
    mode as pyinfra's File fact writes it), or ``None`` when there is no such file.

    .. code:: python

        host.get_fact(FileDigest, path="/usr/local/bin/k3s")
    """

    def command(self, path: str) -> str:
        return f"if [ -f {path} ]; then stat -c %a {path} && sha256sum {path}; fi"

    def process(self, output: list[str]) -> dict[str, Any] | None:
        if len(output) < 2:
            return None
        return {"mode": int(output[0].strip()), "sha256": output[1].split()[0]}


class K3sNodes(FactBase[dict[str, dict[str, Any]] | None]):
    """
    Every node the cluster knows, by name (each as :class:`K3sNode` describes it), or
    ``None`` when the API does not answer. Ask a k3s server.

    .. code:: python

        server.get_fact(K3sNodes, _sudo=True)
    """

    def command(self) -> str:
        return "k3s kubectl get nodes -o json 2>/dev/null || true"

    def requires_command(self) -> str:
        return "k3s"

    def process(self, output: list[str]) -> dict[str, dict[str, Any]] | None:
        text = "\n".join(output).strip()
        if not text:
            return None
        try:
            return {n["metadata"]["name"]: node_summary(n) for n in json.loads(text)["items"]}
        except (ValueError, KeyError):
            return None
