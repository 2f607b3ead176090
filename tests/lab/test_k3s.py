"""k3s in the lab: the stand-in k3s deployed by the real role (see README fidelity table).

Everything expected comes from the inventory under test: the first server, who is a
server or an agent, overlay addresses, GPU labels. A changed setting restarts the
nodes it touches, servers first, one at a time; a bad checksum or an unreachable
source fails and changes nothing.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import k3s as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.lab import cycle


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.k3s is None:
        pytest.skip("the inventory has no k3s section")
    return inventory


def nodes(lab: Any, inv: Inventory) -> dict[str, dict[str, Any]]:
    assert inv.k3s is not None
    out = lab.host(inv.k3s.server).check_output("sudo k3s kubectl get nodes -o json")
    return {n["metadata"]["name"]: n for n in json.loads(out)["items"]}


def ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def k3s_hosts(inv: Inventory) -> list[str]:
    return configs.servers(inv) + configs.agents(inv)


def test_every_node_joined_on_the_overlay_with_its_labels(lab: Any, inv: Inventory) -> None:
    seen = nodes(lab, inv)
    assert set(seen) == set(k3s_hosts(inv))
    for name, node in seen.items():
        assert ready(node), name
        ips = {a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"}
        assert ips == {str(inv.hosts[name].overlay_ip)}
        labels = node["metadata"]["labels"]
        for key, value in configs.node_labels(inv, name).items():
            assert labels.get(key) == value, (name, key)
        if not configs.node_labels(inv, name):
            assert not set(labels) & set(inv.k3s.gpu_labels), name  # type: ignore[union-attr]
        assert ("node-role.kubernetes.io/control-plane" in labels) == (configs.mode(inv, name) == "server")
        taints = [f"{t['key']}{'=' + t['value'] if t.get('value') else ''}:{t['effect']}"
                  for t in node["spec"].get("taints", [])]
        assert set(configs.node_taints(inv, name)) <= set(taints)


def test_binary_config_and_token_files(lab: Any, inv: Inventory) -> None:
    settings = {**group_defaults(), **inv.settings}
    for name in k3s_hosts(inv):
        host = lab.host(name)
        _, _, sha = configs.release(inv, name, settings)
        assert host.check_output(f"sudo sha256sum {configs.BINARY}").split()[0] == sha
        config = host.file(configs.CONFIG)
        assert config.mode == 0o600 and config.user == "root"
        text = host.check_output(f"sudo cat {configs.CONFIG}")
        assert yaml.safe_load(text)["node-ip"] == str(inv.hosts[name].overlay_ip)
        assert "K10" not in text and "token:" not in text
        assert host.service(configs.service(inv, name)).is_running
        if configs.needs_token_file(inv, name):
            token = host.file(configs.TOKEN_FILE)
            assert token.mode == 0o600 and token.user == "root"
            assert "::server:" in host.check_output(f"sudo cat {configs.TOKEN_FILE}")


def test_containerd_config_written_and_packaged_manifests_listed(lab: Any, inv: Inventory) -> None:
    assert inv.k3s is not None
    for name in k3s_hosts(inv):
        host = lab.host(name)
        toml = host.check_output("sudo cat /var/lib/rancher/k3s/agent/etc/containerd/config.toml")
        has_runtime = host.run("command -v nvidia-container-runtime").rc == 0
        assert ("runtimes.'nvidia'" in toml) == has_runtime, name
    addons = json.loads(lab.host(inv.k3s.server).check_output("sudo k3s kubectl get addons -A -o json"))["items"]
    names = {a["metadata"]["name"] for a in addons}
    assert "coredns" in names
    assert not names & set(inv.k3s.disable)


@pytest.mark.slow_scenario
def test_token_never_in_pyinfra_output(lab: Any, inv: Inventory) -> None:
    """A verbose no-op run (commands and facts printed) shows no token."""
    assert inv.k3s is not None
    _local_only(lab)
    token = lab.host(inv.k3s.server).check_output(f"sudo cat {configs.SERVER_TOKEN}").strip()
    secret = token.rsplit(":", 1)[1]
    proc = cycle.run_pyinfra(cycle.pyinfra_inventory_for(lab.inventory), verbosity=3, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert secret not in proc.stdout + proc.stderr


def test_kubeconfig_command_reaches_the_api_over_the_overlay(lab: Any, inv: Inventory, tmp_path: Path) -> None:
    assert inv.k3s is not None
    out = tmp_path / "kubeconfig"
    done = subprocess.run([str(Path(sys.executable).with_name("hearth")), "kubeconfig", str(lab.inventory),
                           "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(out.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://{inv.hosts[inv.k3s.server].overlay_ip}:{configs.API_PORT}"
    token = config["users"][0]["user"]["token"]
    assert token not in done.stdout + done.stderr
    # From another k3s node (over the overlay), with the kubeconfig's CA and credentials
    other = next(n for n in k3s_hosts(inv) if n != inv.k3s.server)
    host = lab.host(other)
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    host.check_output(f"printf '%s' {_q(ca)} > /tmp/hearth-ca.pem")
    body = host.check_output(f"curl -sS --cacert /tmp/hearth-ca.pem -H {_q('Authorization: Bearer ' + token)} "
                             f"{cluster['server']}/api/v1/nodes")
    assert {n["metadata"]["name"] for n in json.loads(body)["items"]} == set(k3s_hosts(inv))
    host.run("rm -f /tmp/hearth-ca.pem")


def _q(text: str) -> str:
    return shlex.quote(text)


def _local_only(lab: Any) -> None:
    if not lab.local:
        pytest.skip("re-deploys with changed settings: only on a local lab")
