"""Lab: the gateway's Service + EndpointSlice in each k3s server's auto-deploy folder.

k3s (here the stand-in, which lists the folder's manifests as Addons the way k3s's
deploy controller does) picks the file up; its content is the rendered manifest,
pointing at the gateway host's overlay address. No pod runs in the lab (the k3s
stand-in has no kubelet), so a pod calling the Service is not exercised here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from hearth.configs import gateway_service
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory

pytestmark = pytest.mark.lab


def test_each_k3s_server_applies_the_gateway_service(lab: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    if not gateway_service.wanted(inv):
        pytest.skip("no k3s cluster or no gateway in this inventory")
    servers = [n for n, h in inv.hosts.items() if "k3s_server" in h.roles and h.os == "linux"]
    want = gateway_service.manifest(inv)
    digest = hashlib.sha256(want.render().encode()).hexdigest()
    for name in servers:
        node = lab.host(name)
        with node.sudo():
            f = node.file(want.dest)
            assert f.mode == 0o600 and f.user == "root"
        addons = json.loads(node.check_output("sudo k3s kubectl get addons -A -o json"))["items"]
        mine = [a for a in addons if a["spec"]["source"] == want.dest]
        assert len(mine) == 1, [a["metadata"]["name"] for a in addons]
        assert mine[0]["spec"]["checksum"] == digest
        text = node.check_output(f"sudo cat {want.dest}")
        assert f'"{inv.hosts[inv.gateway.host].overlay_ip}"' in text
        assert f"port: {inv.gateway.port}" in text
