"""The k3s stand-in on loopback: server, agents with the right and a wrong token, kubectl.

Each process gets its own root (K3S_STANDIN_ROOT) standing for a machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.inventory.k3s_checks import recorded_keys

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standins" / "k3s" / "k3s.py"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the stand-in makes its CA with openssl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in as the lab publishes it: with the recorded key list injected."""
    from hearth.lab.artifacts.publish import k3s_standin_source

    out = tmp_path_factory.mktemp("bin") / "k3s"
    out.write_bytes(k3s_standin_source())
    out.chmod(0o755)
    return out


class Node:
    def __init__(self, root: Path, binary: Path, env: dict[str, str] | None = None) -> None:
        self.root, self.binary = root, binary
        self.env = {**os.environ, "K3S_STANDIN_ROOT": str(root), "K3S_STANDIN_HEARTBEAT_S": "0.5", **(env or {})}
        self.proc: subprocess.Popen[str] | None = None

    def config(self, text: str) -> None:
        path = self.root / "etc/rancher/k3s/config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def start(self, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(self.binary), mode], env=self.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(self.binary), *args], env=self.env, text=True,
                              capture_output=True, timeout=30)

    def stop(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return out


@pytest.fixture
def nodes(tmp_path: Path, binary: Path) -> Iterator[dict[str, Node]]:
    made: dict[str, Node] = {}
    yield made
    for node in made.values():
        node.stop()


def wait_for(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out")


def get_nodes(server: Node) -> dict[str, dict]:  # type: ignore[type-arg]
    out = server.run("kubectl", "get", "nodes", "-o", "json")
    if out.returncode != 0:
        return {}
    return {n["metadata"]["name"]: n for n in json.loads(out.stdout)["items"]}


def ready(node: dict) -> bool:  # type: ignore[type-arg]
    return node["status"]["conditions"][0]["status"] == "True"


def start_server(nodes: dict[str, Node], tmp_path: Path, binary: Path, extra: str = "") -> tuple[Node, int]:
    port = free_port()
    server = nodes["cp"] = Node(tmp_path / "cp", binary)
    server.config(f"node-name: cp\nnode-ip: 127.0.0.1\nhttps-listen-port: {port}\nwrite-kubeconfig-mode: '0600'\n"
                  f"disable:\n- traefik\n{extra}")
    server.start("server")
    wait_for(lambda: (tmp_path / "cp/var/lib/rancher/k3s/server/token").exists() and get_nodes(server))
    return server, port


def test_server_writes_token_kubeconfig_and_packaged_manifests(nodes: dict[str, Node], tmp_path: Path,
                                                               binary: Path) -> None:
    server, _ = start_server(nodes, tmp_path, binary)
    token = tmp_path / "cp/var/lib/rancher/k3s/server/token"
    assert token.read_text().startswith("K10") and "::server:" in token.read_text()
    assert token.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cp/etc/rancher/k3s/k3s.yaml").stat().st_mode & 0o777 == 0o600
    manifests = tmp_path / "cp/var/lib/rancher/k3s/server/manifests"
    assert (manifests / "coredns.yaml").exists() and not (manifests / "traefik.yaml").exists()
    cp = get_nodes(server)["cp"]
    assert ready(cp) and cp["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true"
    addons = json.loads(server.run("kubectl", "get", "addons", "-A", "-o", "json").stdout)["items"]
    assert "coredns" in {a["metadata"]["name"] for a in addons}


def test_agent_joins_with_the_token_and_a_wrong_token_is_refused(nodes: dict[str, Node], tmp_path: Path,
                                                                 binary: Path) -> None:
    server, port = start_server(nodes, tmp_path, binary)
    token = (tmp_path / "cp/var/lib/rancher/k3s/server/token").read_text()
    for name, secret in (("good", token), ("bad", token.rsplit(":", 1)[0] + ":wrong")):
        agent = nodes[name] = Node(tmp_path / name, binary)
        (tmp_path / name).mkdir()
        (tmp_path / name / "token").write_text(secret)
        agent.config(f"server: https://127.0.0.1:{port}\ntoken-file: {tmp_path / name / 'token'}\nnode-name: {name}\n"
                     "node-ip: 127.0.0.1\nnode-label:\n- nvidia.com/gpu.present=true\n"
                     "node-taint:\n- nvidia.com/gpu=true:NoSchedule\n")
        agent.start("agent")
    good = wait_for(lambda: get_nodes(server).get("good"))
    assert ready(good) and good["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert good["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    time.sleep(1.5)  # the bad agent has retried a few times by now
    assert "bad" not in get_nodes(server)
    out = nodes["bad"].stop()
    assert "token rejected" in out


def test_unknown_key_is_refused(nodes: dict[str, Node], tmp_path: Path, binary: Path) -> None:
    node = nodes["x"] = Node(tmp_path / "x", binary)
    node.config("node-name: x\nkubelet-args:\n- max-pods=10\n")
    out = node.run("server")
    assert out.returncode == 1 and "unknown server configuration key 'kubelet-args'" in out.stderr
    node.config("server: https://127.0.0.1:1\ntoken: t\ncluster-init: true\n")
    out = node.run("agent")
    assert out.returncode == 1 and "unknown agent configuration key 'cluster-init'" in out.stderr


def test_nvidia_runtime_in_containerd_config_and_gpus_with_the_device_plugin(
    nodes: dict[str, Node], tmp_path: Path, binary: Path,
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, text in (("nvidia-container-runtime", "#!/bin/sh\n"),
                       ("nvidia-smi", "#!/bin/sh\necho 'GPU 0: RTX 3060 (UUID: GPU-1)'\n")):
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    server, port = start_server(nodes, tmp_path, binary)
    token = (tmp_path / "cp/var/lib/rancher/k3s/server/token").read_text()
    gpu = nodes["gpu"] = Node(tmp_path / "gpu", binary, {"PATH": f"{tools}:{os.environ['PATH']}"})
    gpu.config(f"server: https://127.0.0.1:{port}\ntoken: '{token.strip()}'\nnode-name: gpu\nnode-ip: 127.0.0.1\n")
    gpu.start("agent")
    node = wait_for(lambda: get_nodes(server).get("gpu"))
    toml = (tmp_path / "gpu/var/lib/rancher/k3s/agent/etc/containerd/config.toml").read_text()
    assert f"runtimes.'nvidia'.options]\n  BinaryName = \"{tools}/nvidia-container-runtime\"" in toml
    assert "nvidia.com/gpu" not in node["status"]["allocatable"]  # no device plugin yet
    (tmp_path / "cp/var/lib/rancher/k3s/server/manifests/nvidia-device-plugin.yaml").write_text(
        "name: nvidia-device-plugin-daemonset\n")
    assert get_nodes(server)["gpu"]["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    cp_toml = (tmp_path / "cp/var/lib/rancher/k3s/agent/etc/containerd/config.toml").read_text()
    assert "nvidia" not in cp_toml.split("DO NOT EDIT.")[1]


def test_kubectl_label_and_taint(nodes: dict[str, Node], tmp_path: Path, binary: Path) -> None:
    server, _ = start_server(nodes, tmp_path, binary)
    assert server.run("kubectl", "label", "node", "cp", "a=b", "--overwrite").returncode == 0
    assert server.run("kubectl", "taint", "node", "cp", "x=y:NoSchedule").returncode == 0
    cp = get_nodes(server)["cp"]
    assert cp["metadata"]["labels"]["a"] == "b" and cp["spec"]["taints"][0]["key"] == "x"
    assert server.run("kubectl", "label", "node", "cp", "a-").returncode == 0
    assert server.run("kubectl", "taint", "node", "cp", "x:NoSchedule-").returncode == 0
    cp = get_nodes(server)["cp"]
    assert "a" not in cp["metadata"]["labels"] and not cp["spec"].get("taints")


def test_recorded_keys_are_injected(binary: Path) -> None:
    text = binary.read_text()
    assert "KNOWN_KEYS: dict[str, dict[str, str]] = {}" not in text
    assert json.dumps(recorded_keys()["agent"], sort_keys=True) in text


def test_a_second_server_joins_the_first_and_answers_for_the_cluster(nodes: dict[str, Node], tmp_path: Path,
                                                                     binary: Path) -> None:
    server, port = start_server(nodes, tmp_path, binary, extra="cluster-init: true\n")
    token = (tmp_path / "cp/var/lib/rancher/k3s/server/token").read_text().strip()
    joiner = nodes["cp2"] = Node(tmp_path / "cp2", binary)
    (tmp_path / "cp2").mkdir()
    (tmp_path / "cp2" / "token").write_text(token)
    joiner.config(f"server: https://127.0.0.1:{port}\ntoken-file: {tmp_path / 'cp2' / 'token'}\nnode-name: cp2\n"
                  f"node-ip: 127.0.0.1\nhttps-listen-port: {free_port()}\n")
    joiner.start("server")
    cp2 = wait_for(lambda: get_nodes(server).get("cp2"))
    assert cp2["metadata"]["labels"]["node-role.kubernetes.io/etcd"] == "true"
    assert get_nodes(server)["cp"]["metadata"]["labels"]["node-role.kubernetes.io/etcd"] == "true"
    # the joiner shares the cluster's CA and token, and its own API answers for the whole cluster
    assert (tmp_path / "cp2/var/lib/rancher/k3s/server/token").read_text().strip() == token
    assert set(wait_for(lambda: get_nodes(joiner))) == {"cp", "cp2"}
