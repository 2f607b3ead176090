"""Lab: the firewall's k3s rules with real packets between machines (issue 15 item 5).

No k3s runs here, so stand-ins take its places on the ports and addresses k3s uses:
listeners on the API, kubelet and flannel VXLAN ports; a pod = a network namespace
with a pod-CIDR address behind a veth named like the pod bridge (``cni0``); and one
nft NAT table standing for kube-proxy's NodePort / servicelb DNAT to that pod and
flannel's masquerade of pod traffic leaving over the overlay. Checked: API, kubelet
and flannel answer over the overlay and not from the LAN; the pod reaches the
gateway and the exporter on its node (not a port no role opens) and a service on
another node over the overlay; NodePort and servicelb's 80/443 are closed from the
LAN (the forward chain) while the same NodePort answers over the overlay.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hearth.configs import firewall as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from tests.lab.packets import listen, stop, tcp_open_from, tcp_open_from_here

pytestmark = pytest.mark.lab
NS = "hearth-test-pod"
NAT = "hearth_test_k3s_standin"
UNIT = "hearth-test-k3s"  # the flannel stand-in
NODEPORT = 30080
SERVICELB = (80, 443)
POD_PORT = 8080
CLOSED = 18999  # opened by no role
FLAG = "/run/hearth-test-flannel"


@pytest.fixture(scope="module")
def k3s(lab: Any) -> Iterator[dict[str, Any]]:
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.k3s is None:
        pytest.skip("no k3s section in this inventory")
    nodes = [n for n in inv.linux_hosts() if configs.k3s_node(inv, n) and not inv.hosts[n].sleep.sleeps]
    gateway = inv.gateway.host if inv.gateway is not None else None
    node = gateway if gateway in nodes else inv.k3s.server
    others = [n for n in nodes if n != node]
    if not others:
        pytest.skip("needs a second awake k3s node")
    other = others[0]
    pods = inv.k3s.cluster_cidr
    subnet = next(pods.subnets(new_prefix=24))
    bridge_ip, pod_ip = subnet.network_address + 1, subnet.network_address + 5
    n = lab.host(node)
    if n.run(f"ip link show {configs.POD_INTERFACES[0]}").rc == 0:
        pytest.skip(f"{node} already has a {configs.POD_INTERFACES[0]} (a real pod network)")
    iface = inv.overlay.interface
    setup = [
        f"ip netns add {NS}",
        f"ip link add {configs.POD_INTERFACES[0]} type veth peer name eth0 netns {NS}",
        f"ip addr add {bridge_ip}/24 dev {configs.POD_INTERFACES[0]}",
        f"ip link set {configs.POD_INTERFACES[0]} up",
        f"ip -n {NS} link set lo up",
        f"ip -n {NS} addr add {pod_ip}/24 dev eth0",
        f"ip -n {NS} link set eth0 up",
        f"ip -n {NS} route add default via {bridge_ip}",
        f"nft add table ip {NAT}",
        f"nft 'add chain ip {NAT} pre {{ type nat hook prerouting priority dstnat; }}'",
        f"nft 'add rule ip {NAT} pre tcp dport {{ {NODEPORT}, {SERVICELB[0]}, {SERVICELB[1]} }} "
        f"dnat to {pod_ip}:{POD_PORT}'",
        f"nft 'add chain ip {NAT} post {{ type nat hook postrouting priority srcnat; }}'",
        f"nft 'add rule ip {NAT} post ip saddr {pods} ip daddr != {pods} oifname \"{iface}\" masquerade'",
    ]
    units: list[str] = []
    try:
        for command in setup:
            n.check_output(f"sudo {command}")
        listen(n, POD_PORT, units, NS)
        yield {"inv": inv, "node": node, "other": other, "pod_ip": str(pod_ip), "units": units}
    finally:
        for host_name in (node, other):
            stop(lab.host(host_name), units)
        n.run(f"sudo nft delete table ip {NAT}")
        n.run(f"sudo ip link delete {configs.POD_INTERFACES[0]}")
        n.run(f"sudo ip netns delete {NS}")


def test_api_kubelet_and_flannel_over_the_overlay_only(lab: Any, k3s: dict[str, Any]) -> None:
    inv, node, other = k3s["inv"], k3s["node"], k3s["other"]
    n, o = lab.host(node), lab.host(other)
    target = inv.hosts[node]
    ports = [configs.KUBELET] + ([configs.K3S_API] if node == inv.k3s.server else [])
    for port in ports:
        listen(n, port, k3s["units"])
        assert tcp_open_from(o, str(target.overlay_ip), port), f"{port} over the overlay from {other}"
        assert not tcp_open_from(o, target.address, port), f"{port} from {other}'s LAN address must be dropped"
        assert not tcp_open_from_here(target.address, port), f"{port} from this machine on the LAN must be dropped"

    (proto, vxlan, _), *_ = configs.flannel_ports(inv)
    assert proto == "udp"
    receive = (f"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', {vxlan})); "
               f"d, a = s.recvfrom(64); open('{FLAG}', 'w').write(a[0])")
    unit = f"{UNIT}-udp-{vxlan}"
    n.check_output(f"sudo rm -f {FLAG} && sudo systemd-run --collect --unit {unit} python3 -c \"{receive}\"")
    k3s["units"].append(unit)
    n.run(f"for i in $(seq 50); do ss -lun | grep -q ':{vxlan} ' && exit 0; sleep 0.1; done; exit 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # from the LAN first: must not arrive
        s.sendto(b"lan", (target.address, vxlan))
    send = f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'overlay', ('{{}}', {vxlan}))"
    o.check_output(f"python3 -c \"{send.format(target.address)}\"")  # from other's LAN address
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # give a wrongly accepted datagram time to show
        assert n.run(f"test -s {FLAG}").rc != 0, "flannel's port answered a LAN datagram"
        time.sleep(0.2)
    o.check_output(f"python3 -c \"{send.format(target.overlay_ip)}\"")
    n.check_output(f"for i in $(seq 50); do test -s {FLAG} && exit 0; sleep 0.1; done; exit 1")
    assert n.check_output(f"cat {FLAG}") == str(inv.hosts[other].overlay_ip)


def test_a_pod_reaches_its_nodes_services_and_a_service_on_another_node(lab: Any, k3s: dict[str, Any]) -> None:
    inv, node, other = k3s["inv"], k3s["node"], k3s["other"]
    n, o = lab.host(node), lab.host(other)
    own = str(inv.hosts[node].overlay_ip)
    exporter = int(group_defaults()["node_exporter_port"])
    services = [(port, why) for proto, port, why in configs.service_ports(inv, node) if proto == "tcp"]
    assert exporter in dict(services)
    for port in (*dict(services), CLOSED):
        listen(n, port, k3s["units"])
    for port, why in services:  # the API, kubelet, the gateway, the exporter, serves...
        assert tcp_open_from(n, own, port, NS), f"a pod on {node} must reach {why} ({own}:{port})"
    assert not tcp_open_from(n, own, CLOSED, NS), "a port no role opens stays closed to pods"

    listen(o, exporter, k3s["units"])
    remote = str(inv.hosts[other].overlay_ip)
    assert tcp_open_from(n, remote, exporter, NS), f"a pod on {node} must reach {other}'s exporter over the overlay"
    assert ipaddress.ip_address(k3s["pod_ip"]) in inv.k3s.cluster_cidr


def test_a_pod_reaches_no_cuda_recovery_trigger(lab: Any, k3s: dict[str, Any]) -> None:
    """The trigger is the gateway's alone: not a pod's on the trigger host, nor one on the
    gateway host (masqueraded behind the gateway's own address, so the forward chain there)."""
    from hearth.configs import recover_cuda
    from tests.lab.test_firewall_recover import awake, trigger_hosts

    inv, node = k3s["inv"], k3s["node"]
    n = lab.host(node)
    gateway = inv.gateway.host if inv.gateway is not None else None
    targets = [t for t in trigger_hosts(inv) if t == node or (node == gateway and awake(lab, t))]
    if not targets:
        pytest.skip(f"{node} has no trigger and is not the gateway host of an awake one")
    for target in targets:
        address = str(inv.hosts[target].overlay_ip)
        assert tcp_open_from(n, address, recover_cuda.PORT), f"{node} itself reaches {target}'s trigger"
        assert not tcp_open_from(n, address, recover_cuda.PORT, NS), f"a pod on {node} reached {target}'s trigger"


def test_published_ports_closed_from_the_lan(lab: Any, k3s: dict[str, Any]) -> None:
    inv, node, other = k3s["inv"], k3s["node"], k3s["other"]
    o = lab.host(other)
    target = inv.hosts[node]
    assert tcp_open_from(o, str(target.overlay_ip), NODEPORT), "a NodePort answers over the overlay (DNAT to the pod)"
    for port in (NODEPORT, *SERVICELB):
        assert not tcp_open_from_here(target.address, port), f"{port} (NodePort/servicelb) from the LAN must be dropped"
        assert not tcp_open_from(o, target.address, port), f"{port} from {other}'s LAN address must be dropped"
    live = lab.host(node).check_output(f"sudo nft list chain {configs.FAMILY} {configs.TABLE} forward")
    assert "ct status dnat drop" in live
