"""Issue 22 item 3: the gateway as a Kubernetes Service + EndpointSlice (offline checks).

Validated like the NVIDIA manifests: kubernetes-validate, strictly, against the
schemas of the pinned k3s release's Kubernetes version.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from hearth.commands import host_files
from hearth.configs import firewall, gateway_service
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory

from .test_configs_nvidia import kubernetes_version


def test_service_and_endpointslice_are_valid_and_point_at_the_overlay(
        write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(), group_defaults())
    docs = [d for d in yaml.safe_load_all(gateway_service.manifest(inv).render()) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_version(inv), strict=True)
    service, slice_ = docs
    assert service["kind"] == "Service" and "selector" not in service["spec"]
    assert service["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 4000, "targetPort": 4000}]
    assert slice_["kind"] == "EndpointSlice"
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == service["metadata"]["name"]
    # not the endpoint-slice controller's: it would delete a slice of a selector-less Service
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "hearth"
    assert slice_["endpoints"] == [{"addresses": ["10.77.0.1"], "conditions": {"ready": True}}]
    assert slice_["ports"][0]["port"] == 4000
    assert gateway_service.url(inv) == "http://hearth-gateway.default.svc:4000"


def test_manifest_goes_to_k3s_servers_only_and_follows_the_gateway(
        write_inventory: Callable[..., Path]) -> None:
    def moved(d: dict[str, Any]) -> None:
        d["gateway"]["port"] = 8081
    inv = load_inventory(write_inventory(moved), group_defaults())
    files = {f.dest: f for f in host_files(inv, "k3master")}
    assert gateway_service.MANIFEST in files
    assert '"10.77.0.1"' in files[gateway_service.MANIFEST].render()
    assert "port: 8081" in files[gateway_service.MANIFEST].render()
    assert files[gateway_service.MANIFEST].mode == "0600"
    assert gateway_service.MANIFEST not in {f.dest for f in host_files(inv, "phone1")}

    def no_k3s(d: dict[str, Any]) -> None:
        d.pop("k3s")
        for h in d["hosts"].values():
            h["roles"] = [r for r in h.get("roles", []) if not r.startswith("k3s")]
            h.pop("k3s", None)
    bare = load_inventory(write_inventory(no_k3s), group_defaults())
    assert not gateway_service.wanted(bare)
    assert "gateway from pods" not in firewall.ruleset(bare, "k3master").render()


def test_pod_network_reaches_the_gateway_port_on_the_gateway_host_only(
        write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(), group_defaults())
    rule = 'iifname { "cni0", "flannel.1" } ip saddr 10.42.0.0/16 tcp dport 4000 accept'
    assert rule in firewall.ruleset(inv, "k3master").render()
    assert "tcp dport 4000" not in firewall.ruleset(inv, "phone1").render()
