"""The nftables ruleset of a host: which port is open to whom, from the inventory.

The port mapping lives here, in Python; ``templates/firewall/`` only lays it out.
Policy: inbound is dropped unless listed. SSH comes first (admin LAN + overlay),
WireGuard's UDP port is open to the LAN, and every service port is open only to
the overlay (on the overlay interface, from the overlay CIDR) -- exactly the ports
this host's roles and serves listen on. hearth owns one table (``inet hearth``);
other tables (k3s, flannel, kube-proxy) are left alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from hearth.configs import ConfigFile, recover_cuda
from hearth.configs.base import settings
from hearth.inventory import Inventory

RULESET = "/etc/nftables.conf"
FAMILY = "inet"
TABLE = "hearth"
K3S_API = 6443
KUBELET = 10250
FLANNEL_VXLAN = 8472
POD_INTERFACES = ("cni0", "flannel.1")


@dataclass(frozen=True)
class Allow:
    """Accept ``proto``/``port`` from ``sources`` (on ``interfaces``, when given)."""

    proto: str
    port: int
    sources: tuple[str, ...]
    why: str
    interfaces: tuple[str, ...] = ()


def service_ports(inv: Inventory, name: str) -> list[tuple[str, int, str]]:
    """(proto, port, why) of every service this host's roles open, overlay-only."""
    host = inv.hosts[name]
    ports: list[tuple[str, int, str]] = [("tcp", int(settings(inv, name)["node_exporter_port"]), "node exporter")]
    if "k3s_server" in host.roles:
        ports.append(("tcp", K3S_API, "k3s API"))
    if {"k3s_server", "k3s_agent"} & set(host.roles):
        ports += [("tcp", KUBELET, "kubelet"), ("udp", FLANNEL_VXLAN, "flannel VXLAN")]
    if "gateway" in host.roles and inv.gateway is not None:
        ports.append(("tcp", inv.gateway.port, "hearth gateway"))
    for serve in host.serves:
        ports.append(("tcp", serve.listen_port, f"{serve.engine} {serve.name}"))
    if inv.monitoring is not None and inv.monitoring.host == name:
        ports += [("tcp", inv.monitoring.prometheus_port, "prometheus"),
                  ("tcp", inv.monitoring.alertmanager_port, "alertmanager")]
    if recover_cuda.triggerable(inv, name):
        ports.append(("tcp", recover_cuda.PORT, "CUDA recovery trigger"))
    unique: dict[tuple[str, int], str] = {}
    for proto, port, why in ports:
        unique[(proto, port)] = f"{unique[(proto, port)]}, {why}" if (proto, port) in unique else why
    return [(proto, port, why) for (proto, port), why in unique.items()]


def rules(inv: Inventory, name: str) -> list[Allow]:
    """The accept rules in order: SSH first, then WireGuard, services, pod access."""
    host = inv.hosts[name]
    overlay = str(inv.overlay.cidr)
    iface = inv.overlay.interface
    ssh_port = host.ssh_port or inv.ssh.port
    out = [Allow("tcp", ssh_port, tuple(dict.fromkeys([str(inv.lan.admin), overlay])), "ssh")]
    if inv.overlay.kind == "wireguard":
        out.append(Allow("udp", inv.overlay.port, (str(inv.lan.cidr),), "wireguard"))
    for proto, port, why in service_ports(inv, name):
        out.append(Allow(proto, port, (overlay,), why, (iface,)))
    from hearth.configs.gateway_lan import lan_rules  # imports Allow from here

    out += lan_rules(inv, name)  # gateway.lan: opt-in, to the listed CIDRs only
    if inv.k3s is not None and {"k3s_server", "k3s_agent"} & set(host.roles):
        pods = (str(inv.k3s.cluster_cidr),)
        if "k3s_server" in host.roles:
            out.append(Allow("tcp", K3S_API, pods, "k3s API from pods", POD_INTERFACES))
        out.append(Allow("tcp", KUBELET, pods, "kubelet from pods", POD_INTERFACES))
    return out


def ruleset(inv: Inventory, name: str) -> ConfigFile:
    allows = rules(inv, name)
    context: dict[str, Any] = {
        "host": name,
        "family": FAMILY,
        "table": TABLE,
        "rules": allows,
        "ping_from": tuple(dict.fromkeys([str(inv.lan.cidr), str(inv.overlay.cidr)])),
    }
    digest = hashlib.sha256(
        json.dumps({**context, "rules": [asdict(a) for a in allows]}, sort_keys=True).encode()
    ).hexdigest()[:16]
    # The live table carries this stamp: the deploy re-applies when the kernel's copy differs.
    context["stamp"] = f"hearth {digest}"
    return ConfigFile(dest=RULESET, template="firewall/nftables.conf.j2", context=context, mode="0600")


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if inv.hosts[name].os != "linux":
        return []
    return [ruleset(inv, name)]
