"""k3s's files: /etc/rancher/k3s/config.yaml and the systemd unit, from the inventory.

Every node talks k3s on the overlay: node-ip (and a server's advertise-address) is
the host's overlay IP and flannel runs over the overlay interface. The first server
(`k3s.server`) initialises the cluster (embedded etcd when there is more than one
server); further servers and agents join it at `https://<first server overlay IP>:6443`
with the token in /etc/rancher/k3s/token (0600), which the deploy copies from the
first server (or from `k3s.token`) -- never in config.yaml, so config.yaml holds no
secret and `hearth render` can show it. It is 0600 anyway.
"""

from __future__ import annotations

from typing import Any

import yaml

from hearth.configs import ConfigFile
from hearth.inventory import Inventory
from hearth.inventory.k3s_checks import has_nvidia, roles_of

CONFIG = "/etc/rancher/k3s/config.yaml"
TOKEN_FILE = "/etc/rancher/k3s/token"
SERVER_TOKEN = "/var/lib/rancher/k3s/server/token"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
BINARY = "/usr/local/bin/k3s"
IMAGES = "/var/lib/rancher/k3s/agent/images"
MANIFESTS = "/var/lib/rancher/k3s/server/manifests"
API_PORT = 6443


def servers(inv: Inventory) -> list[str]:
    """k3s_server hosts, the first server first."""
    assert inv.k3s is not None
    rest = [n for n in inv.hosts_with_role("k3s_server") if n != inv.k3s.server]
    return [inv.k3s.server, *rest]


def agents(inv: Inventory) -> list[str]:
    return inv.hosts_with_role("k3s_agent")


def mode(inv: Inventory, name: str) -> str:
    """'server' or 'agent' (the k3s sub-command this node runs)."""
    return roles_of(inv.hosts[name])[0]


def service(inv: Inventory, name: str) -> str:
    return "k3s" if mode(inv, name) == "server" else "k3s-agent"


def is_first_server(inv: Inventory, name: str) -> bool:
    return inv.k3s is not None and name == inv.k3s.server


def server_url(inv: Inventory) -> str:
    assert inv.k3s is not None
    return f"https://{inv.hosts[inv.k3s.server].overlay_ip}:{API_PORT}"


def needs_token_file(inv: Inventory, name: str) -> bool:
    """Joining nodes always; the first server only when the inventory names the token."""
    assert inv.k3s is not None
    return not is_first_server(inv, name) or inv.k3s.token is not None


def node_labels(inv: Inventory, name: str) -> dict[str, str]:
    """GPU labels on NVIDIA hosts (`k3s.gpu_labels`), then the host's own labels."""
    assert inv.k3s is not None
    host = inv.hosts[name]
    labels = dict(inv.k3s.gpu_labels) if has_nvidia(host) else {}
    labels.update(host.k3s.labels)
    return labels


def node_taints(inv: Inventory, name: str) -> list[str]:
    assert inv.k3s is not None
    host = inv.hosts[name]
    taints = list(inv.k3s.gpu_taints) if has_nvidia(host) else []
    return taints + [t for t in host.k3s.taints if t not in taints]


def config_values(inv: Inventory, name: str) -> dict[str, Any]:
    """The keys of config.yaml, in a stable order (hearth's first, then the inventory's)."""
    k3s = inv.k3s
    assert k3s is not None
    host = inv.hosts[name]
    ip = str(host.overlay_ip)
    values: dict[str, Any] = {}
    server = mode(inv, name) == "server"
    if not is_first_server(inv, name):
        values["server"] = server_url(inv)
    elif len(servers(inv)) > 1:
        values["cluster-init"] = True
    if needs_token_file(inv, name):
        values["token-file"] = TOKEN_FILE
    values["node-name"] = name
    values["node-ip"] = ip
    if server:
        values["advertise-address"] = ip
        values["tls-san"] = list(dict.fromkeys([ip, name, *k3s.tls_san]))
        values["cluster-cidr"] = str(k3s.cluster_cidr)
        values["service-cidr"] = str(k3s.service_cidr)
        values["flannel-backend"] = k3s.flannel_backend
        values["write-kubeconfig-mode"] = "0600"
        if k3s.disable:
            values["disable"] = list(k3s.disable)
    values["flannel-iface"] = inv.overlay.interface
    labels = node_labels(inv, name)
    if labels:
        values["node-label"] = [f"{k}={v}" for k, v in labels.items()]
    taints = node_taints(inv, name)
    if taints:
        values["node-taint"] = taints
    values.update(k3s.config)
    values.update(k3s.server_config if server else k3s.agent_config)
    values.update(host.k3s.config)
    return values


def unit_ordering(inv: Inventory) -> list[str]:
    """k3s binds the overlay address, so it starts after the overlay is up."""
    if inv.overlay.kind == "wireguard":
        return [f"wg-quick@{inv.overlay.interface}.service"]
    return []


def config_file(inv: Inventory, name: str) -> ConfigFile:
    body = yaml.safe_dump(config_values(inv, name), sort_keys=False, default_flow_style=False)
    return ConfigFile(dest=CONFIG, template="k3s/config.yaml.j2", context={"body": body.rstrip("\n")}, mode="0600")


def unit_file(inv: Inventory, name: str, start_timeout_s: int = 300) -> ConfigFile:
    unit = service(inv, name)
    return ConfigFile(
        dest=f"/etc/systemd/system/{unit}.service",
        template="k3s/k3s.service.j2",
        context={
            "mode": mode(inv, name),
            "binary": BINARY,
            "after": " ".join(["network-online.target", *unit_ordering(inv)]),
            "start_timeout_s": start_timeout_s,
        },
    )


def settings(inv: Inventory, name: str) -> dict[str, Any]:
    """group_data defaults, then the inventory's `settings:`, then the host's (the role reads these)."""
    from hearth.deploy_data import group_defaults

    return {**group_defaults(), **inv.settings, **inv.hosts[name].settings}


def asset(arch: str, settings: dict[str, Any]) -> str:
    """The release asset name for an architecture (`k3s` / `k3s-arm64`)."""
    return str(settings["k3s_assets"][arch])


def version(inv: Inventory, settings: dict[str, Any]) -> str:
    assert inv.k3s is not None
    return inv.k3s.version or str(settings["k3s_version"])


def release(inv: Inventory, name: str, settings: dict[str, Any]) -> tuple[str, str, str]:
    """(version, url, sha256) of this host's k3s binary; a missing checksum is an error."""
    arch = inv.hosts[name].arch
    ver = version(inv, settings)
    name_ = asset(arch, settings)
    url = str(settings["k3s_url"]).format(version=ver, asset=name_, arch=arch)
    sha = (settings.get("k3s_sha256") or {}).get(arch)
    if not sha:
        sums = str(settings["k3s_sha256_url"]).format(version=ver, arch=arch)
        raise ValueError(f"k3s_sha256 has no checksum for {arch} (host {name}): set settings.k3s_sha256.{arch} "
                         f"to the sha256 of {name_} from {sums}; hearth never runs a binary it cannot verify")
    return ver, url, str(sha)


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    host = inv.hosts[name]
    if inv.k3s is None or host.os != "linux" or not roles_of(host):
        return []
    return [config_file(inv, name), unit_file(inv, name)]


def tolerations(taints: list[str]) -> list[dict[str, str]]:
    """Pod tolerations matching `key[=value]:Effect` taints."""
    out = []
    for taint in taints:
        head, _, effect = taint.rpartition(":")
        key, eq, value = head.partition("=")
        out.append({"key": key, "operator": "Equal", "value": value, "effect": effect} if eq
                   else {"key": key, "operator": "Exists", "effect": effect})
    return out


def cuda_probe_pod(inv: Inventory, name: str, image: str) -> dict[str, Any]:
    """A one-shot pod that asks for one GPU on node ``name`` and lists it (`nvidia-smi -L`).

    For checking a real cluster (tests/lab/test_k3s_cluster.py): runtime class `nvidia`
    (k3s ships it since v1.29), the node's GPU taints tolerated.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"hearth-cuda-probe-{name}", "namespace": "default",
                     "labels": {"app.kubernetes.io/managed-by": "hearth"}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": name},
            "runtimeClassName": "nvidia",
            "restartPolicy": "Never",
            "tolerations": tolerations(node_taints(inv, name)),
            "containers": [{"name": "cuda", "image": image, "command": ["nvidia-smi", "-L"],
                            "resources": {"limits": {"nvidia.com/gpu": 1}}}],
        },
    }
