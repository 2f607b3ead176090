"""A real k3s cluster with GPUs (item 7 of the k3s issue): what only real hardware can show.

    pytest tests/lab/test_k3s_cluster.py --hearth-inventory inventory/<lab>.yml

Skipped in the local lab (its k3s is a stand-in: no kubelet, no device plugin, no
pods). Against a real cluster: every node of the inventory is Ready, every GPU node
advertises allocatable nvidia.com/gpu (as many as the inventory lists), and a CUDA
pod asking for one GPU is scheduled and runs `nvidia-smi -L` on each GPU node.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest

from hearth.configs import k3s as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.inventory.k3s_checks import has_nvidia

POD_TIMEOUT_S = 600  # a first pull of the CUDA image can take minutes


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    if lab.local:
        pytest.skip("needs a real k3s cluster (--hearth-inventory): the lab's k3s is a stand-in without pods or GPUs")
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.k3s is None:
        pytest.skip("the inventory has no k3s section")
    return inventory


def kubectl(lab: Any, inv: Inventory, args: str) -> str:
    assert inv.k3s is not None
    return lab.host(inv.k3s.server).check_output(f"sudo k3s kubectl {args}")


def gpu_nodes(inv: Inventory) -> list[str]:
    return [n for n in configs.servers(inv) + configs.agents(inv) if has_nvidia(inv.hosts[n])]


def test_every_node_ready(lab: Any, inv: Inventory) -> None:
    items = {n["metadata"]["name"]: n for n in json.loads(kubectl(lab, inv, "get nodes -o json"))["items"]}
    for name in configs.servers(inv) + configs.agents(inv):
        assert name in items, f"{name} is not in the cluster"
        conditions = {c["type"]: c["status"] for c in items[name]["status"]["conditions"]}
        assert conditions.get("Ready") == "True", f"{name} is not Ready: {conditions}"


def test_gpu_nodes_advertise_their_gpus(lab: Any, inv: Inventory) -> None:
    if not gpu_nodes(inv):
        pytest.skip("no NVIDIA GPU node in the inventory")
    for name in gpu_nodes(inv):
        node = json.loads(kubectl(lab, inv, f"get node {name} -o json"))
        wanted = sum(1 for g in inv.hosts[name].gpus if g.vendor == "nvidia")
        have = int(node["status"].get("allocatable", {}).get("nvidia.com/gpu", "0"))
        assert have >= wanted, f"{name} advertises {have} nvidia.com/gpu, the inventory lists {wanted}"


def test_a_cuda_pod_runs_on_each_gpu_node(lab: Any, inv: Inventory) -> None:
    if not gpu_nodes(inv):
        pytest.skip("no NVIDIA GPU node in the inventory")
    image = str({**group_defaults(), **inv.settings}["k3s_cuda_probe_image"])
    for name in gpu_nodes(inv):
        pod = configs.cuda_probe_pod(inv, name, image)
        pod_name = pod["metadata"]["name"]
        kubectl(lab, inv, f"delete pod {pod_name} --ignore-not-found --wait=true")
        lab.host(inv.k3s.server).check_output(  # type: ignore[union-attr]
            f"echo {shlex.quote(json.dumps(pod))} | sudo k3s kubectl apply -f -")
        try:
            deadline = time.monotonic() + POD_TIMEOUT_S
            phase = ""
            while time.monotonic() < deadline:
                phase = kubectl(lab, inv, f"get pod {pod_name} -o jsonpath={{.status.phase}}").strip()
                if phase in ("Succeeded", "Failed"):
                    break
                time.sleep(3)
            assert phase == "Succeeded", f"CUDA pod on {name}: {phase or 'never ran'}"
            pod_node = kubectl(lab, inv, f"get pod {pod_name} -o jsonpath={{.spec.nodeName}}").strip()
            assert pod_node == name
            assert "GPU 0" in kubectl(lab, inv, f"logs {pod_name}")
        finally:
            kubectl(lab, inv, f"delete pod {pod_name} --ignore-not-found --wait=false")
