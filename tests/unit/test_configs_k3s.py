"""k3s: config.yaml and unit from the inventory, and what validation refuses."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import k3s
from hearth.deploy_data import group_defaults
from hearth.inventory import InventoryError, load_inventory
from hearth.inventory.k3s_checks import recorded_keys

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventory" / "example.yml"


def config(inv: Any, name: str) -> dict[str, Any]:
    text = k3s.config_file(inv, name).render()
    return yaml.safe_load(text)


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, group_defaults())
    return caught.value.lines


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_first_server_config_on_the_overlay() -> None:
    inv = load_inventory(EXAMPLE)
    values = config(inv, "k3master")
    assert values["node-ip"] == values["advertise-address"] == "10.77.0.1"
    assert values["flannel-iface"] == "wg0"
    assert "10.77.0.1" in values["tls-san"] and "k3master" in values["tls-san"]
    assert values["cluster-cidr"] == "10.42.0.0/16" and values["service-cidr"] == "10.43.0.0/16"
    # the only server: sqlite, no etcd; it makes its own token (no token-file, no server)
    assert "cluster-init" not in values and "server" not in values and "token-file" not in values
    assert values["write-kubeconfig-mode"] == "0600"
    assert k3s.config_file(inv, "k3master").mode == "0600"


def test_agents_join_the_first_server_with_a_token_file_and_no_token() -> None:
    inv = load_inventory(EXAMPLE)
    for name in ("phone1", "eyes", "spark"):
        text = k3s.config_file(inv, name).render()
        values = yaml.safe_load(text)
        assert values["server"] == "https://10.77.0.1:6443"
        assert values["token-file"] == k3s.TOKEN_FILE
        assert "token" not in values and "K10" not in text
        assert values["node-ip"] == str(inv.hosts[name].overlay_ip)
        assert "advertise-address" not in values and "tls-san" not in values
        assert k3s.config_file(inv, name).mode == "0600"


def test_gpu_nodes_are_labelled_and_cpu_arm64_agents_are_not() -> None:
    inv = load_inventory(EXAMPLE)
    assert config(inv, "spark")["node-label"] == ["nvidia.com/gpu.present=true"]  # arm64 + GB10
    assert config(inv, "eyes")["node-label"] == ["nvidia.com/gpu.present=true"]
    assert "node-label" not in config(inv, "phone1") and "node-taint" not in config(inv, "phone1")


def test_taints_labels_disable_and_extra_settings(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["k3s"].update({
            "gpu_taints": ["nvidia.com/gpu=true:NoSchedule"], "disable": ["traefik", "servicelb"],
            "tls_san": ["k3s.home.arpa"], "config": {"kubelet-arg": ["max-pods=60"]},
            "server_config": {"etcd-snapshot-retention": 10}, "agent_config": {"snapshotter": "native"},
        })  # fmt: skip
        d["hosts"]["phone1"]["k3s"] = {"labels": {"hearth/kind": "phone"}, "taints": ["arm=true:PreferNoSchedule"]}

    inv = load_inventory(write_inventory(change), group_defaults())
    server, eyes, phone = config(inv, "k3master"), config(inv, "eyes"), config(inv, "phone1")
    assert server["disable"] == ["traefik", "servicelb"] and "k3s.home.arpa" in server["tls-san"]
    assert server["etcd-snapshot-retention"] == 10 and "snapshotter" not in server
    assert eyes["node-taint"] == ["nvidia.com/gpu=true:NoSchedule"] and eyes["snapshotter"] == "native"
    assert all(c["kubelet-arg"] == ["max-pods=60"] for c in (server, eyes, phone))
    assert "etcd-snapshot-retention" not in eyes
    assert phone["node-label"] == ["hearth/kind=phone"] and phone["node-taint"] == ["arm=true:PreferNoSchedule"]


def test_three_servers_use_embedded_etcd_and_joiners_point_at_the_first(
    write_inventory: Callable[..., Path],
) -> None:
    def change(d: dict[str, Any]) -> None:
        d["hosts"]["eyes"]["roles"] = ["k3s_server"]
        d["hosts"]["hands"]["roles"] = ["k3s_server"]

    inv = load_inventory(write_inventory(change), group_defaults())
    assert k3s.servers(inv) == ["k3master", "eyes", "hands"]
    assert config(inv, "k3master")["cluster-init"] is True
    joiner = config(inv, "eyes")
    assert joiner["server"] == "https://10.77.0.1:6443" and joiner["token-file"] == k3s.TOKEN_FILE
    assert "cluster-init" not in joiner and joiner["advertise-address"] == "10.77.0.40"
    assert k3s.service(inv, "eyes") == "k3s" and k3s.service(inv, "phone1") == "k3s-agent"


def test_inventory_token_reference_goes_to_every_node_as_a_file(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["k3s"]["token"] = "env:HEARTH_K3S_TOKEN"

    inv = load_inventory(write_inventory(change), group_defaults())
    assert config(inv, "k3master")["token-file"] == k3s.TOKEN_FILE


def test_unit_is_notify_with_a_bounded_start_after_the_overlay() -> None:
    inv = load_inventory(EXAMPLE)
    unit = k3s.unit_file(inv, "phone1", start_timeout_s=120)
    text = unit.render()
    assert unit.dest == "/etc/systemd/system/k3s-agent.service"
    assert "Type=notify" in text and "TimeoutStartSec=120" in text
    assert "ExecStart=/usr/local/bin/k3s agent\n" in text and "wg-quick@wg0.service" in text


def test_release_url_and_checksum_per_architecture() -> None:
    inv = load_inventory(EXAMPLE)
    settings = dict(group_defaults())
    with pytest.raises(ValueError, match=r"k3s_sha256 has no checksum for arm64 \(host phone1\).*sha256sum-arm64.txt"):
        k3s.release(inv, "phone1", settings)
    settings["k3s_sha256"] = {"amd64": "a" * 64, "arm64": "b" * 64}
    ver, url, sha = k3s.release(inv, "phone1", settings)
    assert url == f"https://github.com/k3s-io/k3s/releases/download/{ver}/k3s-arm64" and sha == "b" * 64
    assert k3s.release(inv, "k3master", settings)[1].endswith(f"/{ver}/k3s")


def test_recorded_keys_are_the_pinned_release_with_their_source() -> None:
    keys = recorded_keys()
    assert keys["version"] == group_defaults()["k3s_version"]
    assert "k3s-io/docs" in keys["source"]
    assert keys["server"]["tls-san"] == "list" and keys["server"]["cluster-init"] == "bool"
    assert keys["agent"]["lb-server-port"] == "int" and "cluster-init" not in keys["agent"]
    assert set(keys["agent"]) - {"disable-apiserver-lb"} <= set(keys["server"])


def test_recorded_keys_reproduce_from_the_help_text(tmp_path: Path) -> None:
    """The extractor reads a help dump the way the docs print it."""
    server = tmp_path / "server.md"
    server.write_text("```bash\nOPTIONS:\n   --config FILE, -c FILE   (config) x\n   --debug   (logging) x\n"
                      "   --tls-san value   (listener) x\n   --https-listen-port value  (listener) (default: 6443)\n"
                      "   --node-name value  (agent/node) x\n```\n")
    agent = tmp_path / "agent.md"
    agent.write_text("OPTIONS:\n   --node-name value  (agent/node) x\n")
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "k3s-config-keys"), str(server), str(agent),
                          "--version", "v0", "--source", "test"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["server"] == {"debug": "bool", "https-listen-port": "int", "node-name": "string", "tls-san": "list"}
    assert data["agent"] == {"node-name": "string"}


@pytest.mark.parametrize(
    ("where", "key", "value", "message"),
    [
        ("config", "kubelet-args", ["x=1"], "not a k3s server config key in v1.33.5+k3s1 (group_data/k3s_config_keys.json) (did you mean kubelet-arg?)"),  # noqa: E501
        ("config", "no-deploy", ["traefik"], "not a k3s server config key"),  # a flag of older releases
        ("agent_config", "cluster-init", True, "set by hearth"),
        ("agent_config", "etcd-snapshot-retention", 3, "not a k3s agent config key"),
        ("server_config", "etcd-snapshot-retention", "ten", "k3s etcd-snapshot-retention takes a int"),
        ("server_config", "secrets-encryption", "yes", "takes a bool"),
        ("config", "token", "K10abc::server:abc", "set by hearth from the first server"),
        ("config", "node-ip", "10.0.0.1", "set by hearth from the host's overlay_ip"),
        ("config", "flannel-backend", "host-gw", "set by hearth from k3s.flannel_backend"),
        ("server_config", "etcd-s3-secret-key", "x", "a secret in config.yaml"),
    ],
)
def test_k3s_settings_are_checked_against_the_pinned_release(
    write_inventory: Callable[..., Path], where: str, key: str, value: Any, message: str,
) -> None:
    def change(d: dict[str, Any]) -> None:
        d["k3s"][where] = {key: value}

    path = write_inventory(change)
    lines = problems(path)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:{line_of(path, key + ':')}: k3s.{where}.{key}: "), lines
    assert message in lines[0]


def test_host_k3s_config_names_file_line_and_host(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["hosts"]["phone2"]["k3s"] = {"config": {"node-lable": ["a=b"]}}

    path = write_inventory(change)
    (line,) = problems(path)
    assert line.startswith(f"{path}:{line_of(path, 'node-lable')}: hosts.phone2.k3s.config.node-lable: ")
    assert "not a k3s agent config key" in line and "did you mean node-label?" in line


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda d: d["hosts"]["eyes"].update(roles=["k3s_server"]), "k3s.server",
         "2 k3s_server hosts (k3master, eyes): embedded etcd needs an odd number"),
        (lambda d: d["k3s"].update(server="phone1"), "k3s.server", "host phone1 does not have the k3s_server role"),
        (lambda d: d["k3s"].update(server="nobody"), "k3s.server", "no host named nobody"),
        (lambda d: d["k3s"].update(flannel_backend="wireguard-native"), "k3s.flannel_backend",
         "flannel's wireguard-native uses UDP 51820, the port of hearth's overlay wg0"),
        (lambda d: d["hosts"]["hands"].update(roles=[]), "hosts.hands.roles",
         "has an NVIDIA GPU but is not in the k3s cluster"),
        (lambda d: d["hosts"]["phone3"].update(k3s={"labels": {"nvidia.com/gpu.present": "true"}}),
         "hosts.phone3.k3s.labels.nvidia.com/gpu.present", "phone3 (arm64) has no NVIDIA GPU"),
        (lambda d: d["k3s"].update(gpu_taints=["nvidia.com/gpu:Sometimes"]), "k3s.gpu_taints[0]",
         "is not a taint"),
        (lambda d: d["k3s"].update(version="v1.31.0+k3s1"), "k3s.version",
         "hearth knows the config keys of k3s v1.33.5+k3s1 only"),
        (lambda d: d["k3s"].update(token="K10deadbeef::server:secret"), "k3s.token", "plain text"),
        (lambda d: d["k3s"].update(disable=["traefik", "dashboard"]), "k3s.disable[1]", "Input should be"),
    ],
)
def test_cluster_shape_problems(
    write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None], path: str, message: str,
) -> None:
    lines = problems(write_inventory(change))
    assert any(f": {path}: " in line and message in line for line in lines), lines


def test_flannel_wireguard_native_is_fine_when_the_overlay_uses_another_port(
    write_inventory: Callable[..., Path],
) -> None:
    def change(d: dict[str, Any]) -> None:
        d["k3s"]["flannel_backend"] = "wireguard-native"
        d["overlay"]["port"] = 51830

    load_inventory(write_inventory(change), group_defaults())


def test_render_writes_the_k3s_files(tmp_path: Path) -> None:
    from hearth.cli import main

    assert main(["render", str(EXAMPLE), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "phone1" / "etc/rancher/k3s/config.yaml").exists()
    assert (tmp_path / "k3master" / "etc/systemd/system/k3s.service").exists()
    assert not (tmp_path / "mouth" / "etc/rancher/k3s/config.yaml").exists()


KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    token: s3cret
"""


def test_kubeconfig_points_at_the_overlay_and_is_written_0600(tmp_path: Path) -> None:
    from hearth import kubeconfig

    inv = load_inventory(EXAMPLE)
    text = kubeconfig.rewrite(KUBECONFIG, inv)
    data = yaml.safe_load(text)
    assert data["clusters"][0]["cluster"]["server"] == "https://10.77.0.1:6443"
    assert data["current-context"] == "hearth-example" == data["contexts"][0]["context"]["cluster"]
    assert data["users"][0]["user"]["token"] == "s3cret"
    out = tmp_path / "kube" / "config"
    os_umask = os.umask(0)
    try:
        kubeconfig.write_private(out, text)
    finally:
        os.umask(os_umask)
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_text() == text


def test_kubeconfig_reads_over_the_one_ssh_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """`hearth kubeconfig` logs in with plan_facts.ssh_argv (strict host keys), not a copy of it."""
    from hearth import kubeconfig
    from hearth.plan_facts import ssh_argv

    inv = load_inventory(EXAMPLE)
    assert inv.k3s is not None
    ran: list[list[str]] = []

    def run(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, KUBECONFIG, "")

    monkeypatch.setattr(kubeconfig.subprocess, "run", run)
    assert kubeconfig.fetch(inv) == KUBECONFIG
    assert ran == [ssh_argv(inv, inv.k3s.server, "sudo -n cat /etc/rancher/k3s/k3s.yaml")]
    assert "StrictHostKeyChecking=yes" in ran[0] and ran[0][-2] == "hearth@192.168.1.10"


def test_kubeconfig_refuses_what_is_not_a_kubeconfig() -> None:
    from hearth import kubeconfig

    with pytest.raises(ValueError, match="not a kubeconfig"):
        kubeconfig.rewrite("hello: world\n", load_inventory(EXAMPLE))


def test_lab_pins_the_published_k3s_standin() -> None:
    """inventory/lab.yml pins the stand-in's sha256 for both architectures (update it when the stand-in changes)."""
    import hashlib

    from hearth.lab.artifacts.publish import k3s_standin_source

    lab = load_inventory(REPO / "inventory" / "lab.yml", group_defaults())
    sha = hashlib.sha256(k3s_standin_source()).hexdigest()
    assert lab.settings["k3s_sha256"] == {"amd64": sha, "arm64": sha}
    settings = {**group_defaults(), **lab.settings}
    ver, url, _ = k3s.release(lab, "lab-agent", settings)
    assert url == f"http://192.168.77.1:8585/k3s/releases/download/{ver}/k3s"


def test_publish_lays_out_the_release_for_both_architectures(tmp_path: Path) -> None:
    import hashlib

    from hearth.lab.artifacts.publish import publish_k3s

    entry = publish_k3s(tmp_path, "http://lab")
    rel = tmp_path / "k3s/releases/download" / entry["version"]
    for arch, asset in (("amd64", "k3s"), ("arm64", "k3s-arm64")):
        sha = hashlib.sha256((rel / asset).read_bytes()).hexdigest()
        assert (rel / f"sha256sum-{arch}.txt").read_text() == f"{sha}  {asset}\n"
        assert entry[f"sha256_{arch}"] == sha


def test_cuda_probe_pod_is_valid_for_the_pinned_kubernetes(write_inventory: Callable[..., Path]) -> None:
    """Strict schema check (an unknown field is an error) for k3s's Kubernetes version."""
    import kubernetes_validate

    def change(d: dict[str, Any]) -> None:
        d["k3s"]["gpu_taints"] = ["nvidia.com/gpu=true:NoSchedule", "dedicated:NoExecute"]

    inv = load_inventory(write_inventory(change), group_defaults())
    kube = ".".join(group_defaults()["k3s_version"].lstrip("v").split(".")[:2])  # v1.33.5+k3s1 -> 1.33
    pod = k3s.cuda_probe_pod(inv, "eyes", group_defaults()["k3s_cuda_probe_image"])
    kubernetes_validate.validate(pod, kube, strict=True)
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
    ]
    bad = copy.deepcopy(pod)
    bad["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kube, strict=True)


def test_role_operations_and_facts_import_and_parse() -> None:
    """What the role loads at deploy time imports cleanly (pyinfra checks operations and facts then)."""
    from hearth.facts.k3s import K3sNode, taint_text
    from hearth.operations import k3s as ops

    assert callable(ops.verified_file) and callable(ops.join_token) and callable(ops.restarted_ready)
    fact = K3sNode()
    assert fact.command(node="gpu1") == "k3s kubectl get node gpu1 -o json 2>/dev/null || true"
    node = {"metadata": {"name": "gpu1", "labels": {"a": "b"}},
            "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}],
                       "allocatable": {"nvidia.com/gpu": "1"}}}
    summary = fact.process(json.dumps(node).splitlines())
    assert summary is not None and summary["ready"] and summary["taints"] == ["nvidia.com/gpu=true:NoSchedule"]
    assert fact.process([]) is None and taint_text({"key": "k", "effect": "NoExecute"}) == "k:NoExecute"


@pytest.mark.parametrize("concern", ["install", "config", "server", "agent", "rollout"])
def test_role_concern_files_import(concern: str) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"k3s_{concern}", REPO / "roles" / "k3s" / f"{concern}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.apply)


def test_file_digest_fact_parses_stat_and_sha256sum() -> None:
    from hearth.facts.k3s import FileDigest

    fact = FileDigest()
    assert fact.process(["600", "ab" * 32 + "  /etc/rancher/k3s/token"]) == {"mode": 600, "sha256": "ab" * 32}
    assert fact.process([]) is None


def test_nodes_fact_maps_names_to_summaries() -> None:
    from hearth.facts.k3s import K3sNodes

    items = {"items": [{"metadata": {"name": n, "labels": {}}, "spec": {},
                        "status": {"conditions": [{"type": "Ready", "status": s}]}}
                       for n, s in (("a", "True"), ("b", "Unknown"))]}
    nodes = K3sNodes().process(json.dumps(items).splitlines())
    assert nodes is not None and nodes["a"]["ready"] and not nodes["b"]["ready"]
    assert K3sNodes().process(["not json"]) is None
