"""Real GPU hosts (not the local lab): models answer, VRAM is what the planner said.

Run against a real cluster's inventory:

    pytest tests/lab/test_real_gpu.py --hearth-inventory inventory/<lab>.yml

For every Linux host with an NVIDIA card that serves vLLM or Ollama models:
each model answers a chat completion under its served name; `nvidia-smi` shows
the service's processes resident within the planner's figure (+-10 %); and where
Ollama runs with KEEP_ALIVE=0, the VRAM is released after the answer. Skips in
the local lab (no GPU there) and on hosts without `nvidia-smi`.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest

from hearth.configs import vllm as vllm_configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.planner.vram import plan_host

pytestmark = pytest.mark.lab
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def inv(lab: Any) -> Any:
    if lab.local:
        pytest.skip("real-hardware checks: point --hearth-inventory at a real cluster (the local lab has no GPU)")
    return load_inventory(lab.inventory, group_defaults())


@pytest.fixture(scope="module")
def gpu_hosts(inv: Any) -> list[str]:
    hosts = [n for n in inv.linux_hosts()
             if any(g.vendor == "nvidia" for g in inv.hosts[n].gpus)
             and any(s.engine in ("vllm", "ollama") for s in inv.hosts[n].serves)]  # fmt: skip
    if not hosts:
        pytest.skip("no Linux NVIDIA host serves vLLM or Ollama models in this inventory")
    return hosts


def node_for(lab: Any, name: str) -> Any:
    node = lab.host(name)
    if not node.exists("nvidia-smi"):
        pytest.skip(f"{name}: no nvidia-smi")
    return node


def service_of(serve: Any) -> str:
    return vllm_configs.unit_name(serve) if serve.engine == "vllm" else "ollama.service"


def base_url(inv: Any, name: str, serve: Any) -> str:
    return f"http://{inv.hosts[name].overlay_ip}:{serve.listen_port}"


def chat(node: Any, url: str, model: str) -> dict[str, Any]:
    body = json.dumps({"model": model, "max_tokens": 16,
                       "messages": [{"role": "user", "content": "Say hello in one word."}]})
    out = node.check_output(f"curl -sS -m 600 {shlex.quote(url + '/v1/chat/completions')} "
                            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")
    return json.loads(out)


def resident_mib(node: Any, service: str) -> float:
    """VRAM held by the processes of a systemd service (its whole cgroup: vLLM's engine
    core and Ollama's runners are children of the main process)."""
    cgroup = node.check_output(f"systemctl show -p ControlGroup --value {service}")
    pids = set(node.check_output(f"cat /sys/fs/cgroup{cgroup}/cgroup.procs 2>/dev/null || true").split())
    rows = node.check_output("nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits")
    total = 0.0
    for row in rows.splitlines():
        pid, _, used = row.partition(",")
        if pid.strip() in pids:
            total += float(used)
    return total


def assert_within_plan(used_gib: float, planned_gib: float, what: str) -> None:
    assert abs(used_gib - planned_gib) <= TOLERANCE * planned_gib, (
        f"{what}: {used_gib:.1f} GiB resident, planned {planned_gib:.1f} GiB (+-{TOLERANCE:.0%})")


def test_each_model_answers_under_its_served_name(lab: Any, inv: Any, gpu_hosts: list[str]) -> None:
    for name in gpu_hosts:
        node = node_for(lab, name)
        for serve in inv.hosts[name].serves:
            if serve.engine not in ("vllm", "ollama"):
                continue
            model = serve.name if serve.engine == "vllm" else serve.model
            answer = chat(node, base_url(inv, name, serve), model)
            assert answer["choices"][0]["message"]["content"], answer
            assert answer["model"] == model


def test_vllm_resident_within_the_plan(lab: Any, inv: Any, gpu_hosts: list[str]) -> None:
    checked = 0
    for name in gpu_hosts:
        plans, _ = plan_host(name, inv.hosts[name], inv.models)
        planned = {m.serve: m.resident_gb for plan in plans for m in plan.models}
        for serve in vllm_configs.vllm_serves(inv, name):
            node = node_for(lab, name)
            used_gib = resident_mib(node, service_of(serve)) / 1024
            want = planned[serve.name]
            assert_within_plan(used_gib, want, f"{name}/{serve.name}")
            checked += 1
    if not checked:
        pytest.skip("no vLLM models on these hosts")


def test_ollama_resident_within_the_plan_or_released_with_keep_alive_zero(
    lab: Any, inv: Any, gpu_hosts: list[str]
) -> None:
    checked = 0
    for name in gpu_hosts:
        plans, _ = plan_host(name, inv.hosts[name], inv.models)
        planned = {m.serve: m.resident_gb for plan in plans for m in plan.models}
        for serve in (s for s in inv.hosts[name].serves if s.engine == "ollama"):
            node = node_for(lab, name)
            chat(node, base_url(inv, name, serve), serve.model)
            if serve.keep_alive == "0":
                deadline = time.monotonic() + 30
                while resident_mib(node, "ollama.service") > 0 and time.monotonic() < deadline:
                    time.sleep(1)
                assert resident_mib(node, "ollama.service") == 0, f"{name}: VRAM not released with KEEP_ALIVE=0"
            else:
                used_gib = resident_mib(node, "ollama.service") / 1024
                want = planned[serve.name]
                assert_within_plan(used_gib, want, f"{name}/{serve.name}")
            checked += 1
    if not checked:
        pytest.skip("no Ollama models on these hosts")
