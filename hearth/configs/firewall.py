"""The nftables ruleset of a host: which port is open to whom, from the inventory.

The port mapping lives here, in Python; ``templates/firewall/`` only lays it out.
Policy: inbound is dropped unless listed. SSH comes first (admin LAN + overlay,
IPv4 and IPv6 ranges alike), WireGuard's UDP port is open to the LAN, and every
service port is open only to the overlay (on the overlay interface, from the
overlay CIDR) -- exactly the ports this host's roles and serves listen on -- and,
on k3s nodes, to the node's own pods. A forward chain keeps what k3s and Docker
publish by DNAT (NodePort, hostPort, servicelb, ``docker run -p``) and the pod and
service ranges closed to anything that does not come over the overlay or from a
pod or local container. hearth owns one table (``inet hearth``); other tables
(k3s, flannel, kube-proxy, Docker) are left alone.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from hearth.configs import ConfigFile, firewall_egress, recover_cuda
from hearth.configs.base import settings
from hearth.inventory import Inventory

RULESET = "/etc/hearth/nftables.conf"
UNIT = "/etc/systemd/system/hearth-firewall.service"
LEGACY_RULESET = "/etc/nftables.conf"  # where hearth put it before it had its own unit
FAMILY = "inet"
TABLE = "hearth"
K3S_API = 6443
KUBELET = 10250
FLANNEL_VXLAN = 8472
FLANNEL_WIREGUARD = (51820, 51821)  # flannel's wireguard-native backend, IPv4 and IPv6
POD_INTERFACES = ("cni0", "flannel.1")
CONTAINER_INTERFACES = ("docker0",)  # plus Docker's user networks, br-*


@dataclass(frozen=True)
class Allow:
    """Accept ``proto``/``port`` from ``sources`` (on ``interfaces``, when given)."""

    proto: str
    port: int
    sources: tuple[str, ...]
    why: str
    interfaces: tuple[str, ...] = ()

    @property
    def ip(self) -> str:
        """nftables' address match of the sources: ``ip`` (IPv4) or ``ip6``."""
        return "ip6" if ipaddress.ip_network(self.sources[0]).version == 6 else "ip"


def by_family(proto: str, port: int, sources: list[str], why: str, interfaces: tuple[str, ...] = ()) -> list[Allow]:
    """One rule per address family (nftables matches IPv4 and IPv6 sources apart)."""
    v4 = tuple(s for s in dict.fromkeys(sources) if ipaddress.ip_network(s).version == 4)
    v6 = tuple(s for s in dict.fromkeys(sources) if ipaddress.ip_network(s).version == 6)
    return [Allow(proto, port, group, why, interfaces) for group in (v4, v6) if group]


def ssh_sources(inv: Inventory) -> list[str]:
    """Where SSH is accepted from: ``lan.admin_cidr`` (IPv4 and IPv6) and the overlay."""
    return list(dict.fromkeys([*(str(n) for n in inv.lan.admin_networks), str(inv.overlay.cidr)]))


def flannel_ports(inv: Inventory) -> list[tuple[str, int, str]]:
    """The UDP ports flannel's backend uses between nodes (over the overlay)."""
    k3s = inv.k3s
    backend = (getattr(k3s, "flannel_backend", None) or (getattr(k3s, "config", None) or {}).get("flannel-backend")
               or "vxlan") if k3s is not None else "vxlan"
    if backend == "vxlan":
        return [("udp", FLANNEL_VXLAN, "flannel VXLAN")]
    if backend == "wireguard-native":
        return [("udp", port, "flannel wireguard-native") for port in FLANNEL_WIREGUARD]
    return []


def unprotected_source(inv: Inventory, address: str) -> str | None:
    """Why a deploy connecting from ``address`` would be cut off by this ruleset's
    SSH rule, or None when it stays reachable (loopback always is)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack sshd reports IPv4 clients as ::ffff:a.b.c.d
    if ip.is_loopback:
        return None
    allowed = [ipaddress.ip_network(s) for s in ssh_sources(inv)]
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    where = ", ".join(str(n) for n in allowed)
    family = "an IPv6" if ip.version == 6 else "an IPv4"
    return (f"this deploy connects from {ip}, which the new ruleset would drop on SSH (allowed: {where}); "
            f"add {family} range holding {ip} to lan.admin_cidr in the inventory, or deploy from inside it")


def service_ports(inv: Inventory, name: str) -> list[tuple[str, int, str]]:
    """(proto, port, why) of every service this host's roles open, overlay-only."""
    host = inv.hosts[name]
    ports: list[tuple[str, int, str]] = [("tcp", int(settings(inv, name)["node_exporter_port"]), "node exporter")]
    if "k3s_server" in host.roles:
        ports.append(("tcp", K3S_API, "k3s API"))
    if host.in_k3s:
        ports += [("tcp", KUBELET, "kubelet"), *flannel_ports(inv)]
    if "gateway" in host.roles and inv.gateway is not None:
        ports.append(("tcp", inv.gateway.port, "hearth gateway"))
    for serve in host.serves:
        ports.append(("tcp", serve.listen_port, f"{serve.engine} {serve.name}"))
    if inv.monitoring is not None and inv.monitoring.host == name:
        ports += [("tcp", inv.monitoring.prometheus_port, "prometheus"),
                  ("tcp", inv.monitoring.alertmanager_port, "alertmanager")]
    unique: dict[tuple[str, int], str] = {}
    for proto, port, why in ports:
        unique[(proto, port)] = f"{unique[(proto, port)]}, {why}" if (proto, port) in unique else why
    return [(proto, port, why) for (proto, port), why in unique.items()]


def trigger_rules(inv: Inventory, name: str) -> list[Allow]:
    """The CUDA recovery trigger: from the gateway host's overlay address alone (the one
    caller), not the overlay, not pods. A gateway on this very host connects over
    loopback (``iif lo``, accepted first)."""
    if not recover_cuda.triggerable(inv, name) or inv.gateway is None:
        return []
    gateway = inv.hosts[inv.gateway.host].overlay_ip
    if gateway is None:
        return []
    return by_family("tcp", recover_cuda.PORT, [f"{gateway}/{gateway.max_prefixlen}"],
                     f"CUDA recovery trigger: the gateway host {inv.gateway.host} only", (inv.overlay.interface,))


def remote_triggers(inv: Inventory, name: str) -> list[str]:
    """On the gateway host: the other hosts' trigger addresses, which nothing it forwards
    may reach (a pod or container there is masqueraded behind the gateway's own address)."""
    if inv.gateway is None or inv.gateway.host != name:
        return []
    return [str(h.overlay_ip) for n, h in inv.hosts.items()
            if n != name and h.overlay_ip is not None and recover_cuda.triggerable(inv, n)]


def k3s_node(inv: Inventory, name: str) -> bool:
    return inv.k3s is not None and inv.hosts[name].in_k3s


def rules(inv: Inventory, name: str) -> list[Allow]:
    """The accept rules in order: SSH first, then WireGuard, services, pod access."""
    host = inv.hosts[name]
    overlay = str(inv.overlay.cidr)
    iface = inv.overlay.interface
    ssh_port = host.ssh_port or inv.ssh.port
    out = by_family("tcp", ssh_port, ssh_sources(inv), "ssh")
    if inv.overlay.kind == "wireguard":
        out.append(Allow("udp", inv.overlay.port, (str(inv.lan.cidr),), "wireguard"))
    for proto, port, why in service_ports(inv, name):
        out.append(Allow(proto, port, (overlay,), why, (iface,)))
    out += trigger_rules(inv, name)  # the gateway host's overlay address only
    from hearth.configs.gateway_lan import lan_rules  # imports Allow from here

    out += lan_rules(inv, name)  # gateway.lan: opt-in, to the listed CIDRs only
    from hearth.configs import client_devices

    out += client_devices.firewall_rules(inv, name)  # the gateway port, nothing else
    if inv.k3s is not None and k3s_node(inv, name):
        # A pod reaching its own node (API, kubelet, and the node's services: the
        # gateway, Ollama, an exporter) arrives from the pod CIDR on the pod bridge.
        pods = (str(inv.k3s.cluster_cidr),)
        for proto, port, why in service_ports(inv, name):
            if proto == "tcp":
                out.append(Allow(proto, port, pods, f"{why} from pods", POD_INTERFACES))
    return out


def forward(inv: Inventory, name: str) -> dict[str, Any]:
    """The forward chain's pieces: who may be forwarded to, and what is closed."""
    trusted = [inv.overlay.interface, *CONTAINER_INTERFACES]
    closed: list[str] = []
    if inv.k3s is not None and k3s_node(inv, name):
        trusted[1:1] = POD_INTERFACES
        closed = [str(inv.k3s.cluster_cidr), str(inv.k3s.service_cidr)]
    published = tuple(sorted({int(p) for p in settings(inv, name)["firewall_lan_published"]}))
    from hearth.configs import client_devices  # imports Allow from here

    return {"trusted": tuple(dict.fromkeys(trusted)), "trusted_wildcards": ("br-*",), "closed": tuple(closed),
            "lan": str(inv.lan.cidr), "lan_published": tuple(str(p) for p in published),
            "blocked": tuple(client_devices.forward_blocked(inv, name)),  # client devices: nothing forwarded
            "triggers": tuple(remote_triggers(inv, name)), "trigger_port": recover_cuda.PORT}


def ruleset(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> ConfigFile:
    """The host's nftables file. ``facts["lan_ipv6"]``: the global IPv6 prefixes on its
    LAN interface (closed to the gateway; none when not given, e.g. ``hearth render``)."""
    allows = rules(inv, name)
    context: dict[str, Any] = {
        "host": name,
        "family": FAMILY,
        "table": TABLE,
        "rules": allows,
        "ping_from": tuple(dict.fromkeys([str(inv.lan.cidr), str(inv.overlay.cidr)])),
        "forward": forward(inv, name),
        # the gateway host: the gateway's own egress
        "output": firewall_egress.chain(inv, name, (facts or {}).get("lan_ipv6", ())),
    }
    # The live table carries this stamp (a hash of the file's text without it): the
    # deploy re-applies when the kernel's copy differs, also after a template change.
    unstamped = ConfigFile(dest=RULESET, template="firewall/nftables.conf.j2", context={**context, "stamp": ""})
    context["stamp"] = f"hearth {hashlib.sha256(unstamped.render().encode()).hexdigest()[:16]}"
    return ConfigFile(dest=RULESET, template="firewall/nftables.conf.j2", context=context, mode="0600")


def unit() -> ConfigFile:
    """hearth's own boot unit: loads and deletes only ``table inet hearth`` (Debian's
    nftables.service flushes the whole ruleset on stop, k3s's and Docker's too)."""
    return ConfigFile(dest=UNIT, template="firewall/hearth-firewall.service.j2",
                      context={"ruleset": RULESET, "family": FAMILY, "table": TABLE})


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if inv.hosts[name].os != "linux" or not inv.hosts[name].managed:
        return []
    return [ruleset(inv, name, facts), unit()]
