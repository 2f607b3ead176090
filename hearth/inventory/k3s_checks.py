"""What validation knows about k3s: the pinned release's config keys and the cluster's shape.

The keys k3s accepts in /etc/rancher/k3s/config.yaml are its long CLI flags; hearth
records those of the pinned release, with their types and where they were read,
in ``group_data/k3s_config_keys.json`` (made by ``scripts/k3s-config-keys`` from
the k3s documentation's CLI help). A key that release does not document -- a typo,
or a flag of another version -- is refused before any host is touched.

Checks yield ``(key.path, message)``; :mod:`hearth.inventory.validate` turns them
into problems with file and line.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from hearth.inventory.model import Host, Inventory

KEYS_FILE = Path(__file__).resolve().parents[2] / "group_data" / "k3s_config_keys.json"

# Keys hearth writes itself (from the inventory), so they may not be set by hand.
HEARTH_KEYS: dict[str, str] = {
    "server": "k3s.server (the first server's overlay address)",
    "token": "the first server at deploy time (or k3s.token: env:/file:)",
    "token-file": "the first server at deploy time (or k3s.token: env:/file:)",
    "agent-token": "the first server at deploy time",
    "agent-token-file": "the first server at deploy time",
    "cluster-init": "the number of k3s_server hosts (embedded etcd with more than one)",
    "cluster-reset": "nothing: a cluster reset is a recovery step, not a setting",
    "node-name": "the inventory host name",
    "node-ip": "the host's overlay_ip",
    "advertise-address": "the host's overlay_ip",
    "flannel-iface": "overlay.interface",
    "flannel-backend": "k3s.flannel_backend",
    "cluster-cidr": "k3s.cluster_cidr",
    "service-cidr": "k3s.service_cidr",
    "tls-san": "k3s.tls_san",
    "disable": "k3s.disable",
    "node-label": "k3s.gpu_labels and hosts.<name>.k3s.labels",
    "node-taint": "k3s.gpu_taints and hosts.<name>.k3s.taints",
    "data-dir": "nothing: hearth reads the token and manifests under /var/lib/rancher/k3s",
    "write-kubeconfig": "nothing: `hearth kubeconfig` reads /etc/rancher/k3s/k3s.yaml",
    "write-kubeconfig-mode": "hearth (0600)",
}
# Keys whose value is a secret: config.yaml is rendered for review, so no secrets in it.
SECRET_KEYS = ("etcd-s3-access-key", "etcd-s3-secret-key", "vpn-auth")

TAINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./_-]*(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@cache
def recorded_keys() -> dict[str, Any]:
    """The recorded key list: ``{"version", "source", "method", "server": {key: type}, "agent": {...}}``."""
    return json.loads(KEYS_FILE.read_text())


def pinned_version() -> str:
    return str(recorded_keys()["version"])


def roles_of(host: Host) -> list[str]:
    """'server' / 'agent' for a k3s node, [] otherwise."""
    return [r.removeprefix("k3s_") for r in host.roles if r in ("k3s_server", "k3s_agent")]


def has_nvidia(host: Host) -> bool:
    return any(gpu.vendor == "nvidia" for gpu in host.gpus)


def _type_ok(kind: str, value: Any) -> bool:
    scalar = (str, int, float)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "list":
        items = value if isinstance(value, list) else [value]
        return all(isinstance(v, scalar) and not isinstance(v, bool) for v in items)
    return isinstance(value, scalar) and not isinstance(value, bool)


def check_config_keys(path: str, mapping: dict[str, Any], roles: list[str]) -> Iterator[tuple[str, str]]:
    """Each key is documented for every role it reaches, with a value of its type."""
    keys = recorded_keys()
    version = keys["version"]
    for key, value in mapping.items():
        where = f"{path}.{key}"
        if key in HEARTH_KEYS:
            yield where, f"set by hearth from {HEARTH_KEYS[key]}; remove it"
            continue
        if key in SECRET_KEYS:
            yield where, "a secret in config.yaml (which `hearth render` shows): not supported; leave it out"
            continue
        for role in roles:
            known: dict[str, str] = keys[role]
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                yield where, (f"not a k3s {role} config key in {version} "
                              f"(group_data/k3s_config_keys.json){hint}")
                break
            if not _type_ok(known[key], value):
                yield where, f"k3s {key} takes a {known[key]}, got {type(value).__name__} {value!r}"
                break


def _check_labels(path: str, labels: dict[str, str]) -> Iterator[tuple[str, str]]:
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            yield f"{path}.{key}", "not a Kubernetes label key ([prefix/]name, name up to 63 characters)"
        elif not LABEL_VALUE.match(str(value)):
            yield f"{path}.{key}", f"{value!r} is not a Kubernetes label value (up to 63 of [A-Za-z0-9._-])"


def _check_taints(path: str, taints: list[str]) -> Iterator[tuple[str, str]]:
    for i, taint in enumerate(taints):
        if not TAINT.match(taint):
            yield f"{path}[{i}]", f"{taint!r} is not a taint (want key[=value]:NoSchedule|PreferNoSchedule|NoExecute)"


def check_cluster(inv: Inventory) -> Iterator[tuple[str, str]]:
    """Server count, first server, flannel vs the overlay, GPU nodes, config keys, labels."""
    k3s = inv.k3s
    if k3s is None:
        for name, host in inv.hosts.items():
            if host.k3s.labels or host.k3s.taints or host.k3s.config:
                yield f"hosts.{name}.k3s", "k3s settings but there is no k3s section"
        return
    if k3s.version is not None and k3s.version != pinned_version():
        yield "k3s.version", (f"hearth knows the config keys of k3s {pinned_version()} only "
                              f"(group_data/k3s_config_keys.json); record {k3s.version}'s with "
                              "scripts/k3s-config-keys before pinning it")
    servers = inv.hosts_with_role("k3s_server")
    agents = inv.hosts_with_role("k3s_agent")
    if k3s.server not in inv.hosts:
        yield "k3s.server", f"no host named {k3s.server}"
    elif "k3s_server" not in inv.hosts[k3s.server].roles:
        yield "k3s.server", f"host {k3s.server} does not have the k3s_server role"
    if len(servers) > 1 and len(servers) % 2 == 0:
        yield "k3s.server", (f"{len(servers)} k3s_server hosts ({', '.join(servers)}): embedded etcd needs an "
                             "odd number (1, 3, 5) to survive losing one; add or remove a server")
    if (k3s.flannel_backend == "wireguard-native" and inv.overlay.kind == "wireguard"
            and inv.overlay.port in (51820, 51821)):  # flannel's IPv4 and IPv6 ports
        yield "k3s.flannel_backend", (f"flannel's wireguard-native uses UDP {inv.overlay.port}, the port of "
                                      f"hearth's overlay {inv.overlay.interface}; use vxlan (it runs inside "
                                      "the overlay already) or move overlay.port off 51820/51821")
    yield from _check_labels("k3s.gpu_labels", k3s.gpu_labels)
    yield from _check_taints("k3s.gpu_taints", k3s.gpu_taints)
    everyone = [r for r, members in (("server", servers), ("agent", agents)) if members]
    yield from check_config_keys("k3s.config", k3s.config, everyone)
    yield from check_config_keys("k3s.server_config", k3s.server_config, ["server"])
    yield from check_config_keys("k3s.agent_config", k3s.agent_config, ["agent"])
    for name, host in inv.hosts.items():
        roles = roles_of(host)
        path = f"hosts.{name}.k3s"
        if not roles:
            if host.k3s.labels or host.k3s.taints or host.k3s.config:
                yield path, "k3s settings on a host with no k3s role"
            if host.os == "linux" and host.managed and has_nvidia(host):  # managed: false: no nvidia role there
                yield f"hosts.{name}.roles", ("has an NVIDIA GPU but is not in the k3s cluster (the nvidia role "
                                              "wires the GPU into k3s): add k3s_agent")
            continue
        yield from check_config_keys(f"{path}.config", host.k3s.config, roles)
        yield from _check_labels(f"{path}.labels", host.k3s.labels)
        yield from _check_taints(f"{path}.taints", host.k3s.taints)
        if not has_nvidia(host):
            for key in host.k3s.labels:
                if key in k3s.gpu_labels:
                    yield f"{path}.labels.{key}", (f"marks a GPU node, but {name} ({host.arch}) has no NVIDIA GPU: "
                                                   "GPU labels follow gpus:, GPU-less nodes do not carry them")
            gpu_taint_keys = {t.split(":")[0].split("=")[0] for t in k3s.gpu_taints}
            for i, taint in enumerate(host.k3s.taints):
                if taint.split(":")[0].split("=")[0] in gpu_taint_keys:
                    yield f"{path}.taints[{i}]", f"a GPU taint on {name}, which has no NVIDIA GPU"
