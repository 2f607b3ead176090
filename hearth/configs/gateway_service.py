"""The gateway as an in-cluster service: a Kubernetes Service + EndpointSlice.

Pods reach the gateway as ``http://hearth-gateway.default.svc:<gateway.port>`` (seed
000's bridge was "just another in-cluster service"). The Service has no selector;
its EndpointSlice, managed by hearth (not by the endpoint-slice controller), points
at the gateway host's overlay address. Both go into every k3s server's auto-deploy
manifests folder, which k3s applies (and re-applies when the file changes).

A pod on another node reaches the overlay address masqueraded to its node's overlay
address (k3s runs flannel with ip-masq), which the gateway host already accepts; a
pod on the gateway host itself arrives from the pod network on the pod bridge, where
the firewall's k3s rule opens every service port of a node (the gateway's too) to
``k3s.cluster_cidr`` (:func:`hearth.configs.firewall.rules`).
"""

from __future__ import annotations

from typing import Any

from hearth.configs import ConfigFile
from hearth.inventory import Inventory

MANIFESTS = "/var/lib/rancher/k3s/server/manifests"
MANIFEST = f"{MANIFESTS}/hearth-gateway-service.yaml"
NAME = "hearth-gateway"
NAMESPACE = "default"


def wanted(inv: Inventory) -> bool:
    """True when the cluster gets the Service: k3s and a gateway in the inventory."""
    return inv.k3s is not None and inv.gateway is not None


def manifest(inv: Inventory) -> ConfigFile:
    """The Service + EndpointSlice manifest for the k3s servers' auto-deploy folder."""
    assert inv.gateway is not None
    return ConfigFile(
        dest=MANIFEST,
        template="gateway/k8s-service.yaml.j2",
        mode="0600",  # k3s's own manifests folder is root-only
        context={
            "name": NAME,
            "namespace": NAMESPACE,
            "port": inv.gateway.port,
            "address": str(inv.hosts[inv.gateway.host].overlay_ip),
            "gateway_host": inv.gateway.host,
        },
    )


def url(inv: Inventory) -> str:
    """What a pod calls: the Service's cluster DNS name and the gateway port."""
    assert inv.gateway is not None
    return f"http://{NAME}.{NAMESPACE}.svc:{inv.gateway.port}"


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """The manifest on every k3s server, when there is a gateway."""
    if wanted(inv) and "k3s_server" in inv.hosts[name].roles:
        return [manifest(inv)]
    return []
