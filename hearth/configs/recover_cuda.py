"""CUDA recovery on GPU hosts (seed 002): a oneshot unit and, unless the host is
the bottom of a terminal route, an overlay-only trigger the gateway's admin API uses.

`hearth-recover-cuda.service` stops the host's GPU services (vLLM units, Ollama),
reloads `nvidia_uvm` and starts them again in start order, each vLLM unit waiting
until ready. The trigger socket listens on the host's overlay address
(`hearth.gateway.recover.PORT`) and starts that unit for the gateway host only,
given the host's derived token (0600 file; never the admin token itself).
"""

from __future__ import annotations

from typing import Any

from hearth.configs import ConfigFile, placeholder
from hearth.configs import vllm as vllm_configs
from hearth.gateway.recover import PORT
from hearth.inventory import Inventory

SCRIPT = "/usr/local/libexec/hearth-recover-cuda"
TRIGGER = "/usr/local/libexec/hearth-recover-cuda-trigger"
TOKEN = "/etc/hearth/recover-cuda.token"
UNIT_DIR = "/etc/systemd/system"
UNIT = f"{UNIT_DIR}/hearth-recover-cuda.service"
SOCKET = f"{UNIT_DIR}/hearth-recover-cuda-trigger.socket"
TRIGGER_UNIT = f"{UNIT_DIR}/hearth-recover-cuda-trigger@.service"


def gpu_services(inv: Inventory, name: str) -> list[str]:
    """This host's GPU services in start order: vLLM units, then Ollama."""
    host = inv.hosts[name]
    services = [vllm_configs.unit_name(s) for s in vllm_configs.vllm_serves(inv, name)]
    if any(s.engine == "ollama" for s in host.serves):
        services.append("ollama.service")
    return services


def applies(inv: Inventory, name: str) -> bool:
    """Linux, an NVIDIA GPU and a GPU service hearth runs."""
    host = inv.hosts[name]
    return host.os == "linux" and any(g.vendor == "nvidia" for g in host.gpus) and bool(gpu_services(inv, name))


def terminal_routes(inv: Inventory, name: str) -> list[str]:
    """Terminal routes this host serves: the gateway never recovers it (the operator is paged)."""
    routes = inv.routing.routes if inv.routing else {}
    served = {r for s in inv.hosts[name].serves for r in s.routes}
    return sorted(r for r in served if r in routes and routes[r].terminal)


def triggerable(inv: Inventory, name: str) -> bool:
    return applies(inv, name) and inv.gateway is not None and not terminal_routes(inv, name)


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not applies(inv, name):
        return []
    services = gpu_services(inv, name)
    conf = vllm_configs.settings(inv, name)
    timeout = 120 + sum(vllm_configs.ready_timeout(s, conf) + 60 for s in vllm_configs.vllm_serves(inv, name))
    files = [
        ConfigFile(dest=SCRIPT, template="recover_cuda/hearth-recover-cuda.sh.j2", mode="0755",
                   context={"services": services, "stop_order": services[::-1]}),
        ConfigFile(dest=UNIT, template="recover_cuda/hearth-recover-cuda.service.j2",
                   context={"script": SCRIPT, "timeout": timeout}),
    ]
    if not triggerable(inv, name):
        return files
    assert inv.gateway is not None
    gateway_ip = str(inv.hosts[inv.gateway.host].overlay_ip)
    return [
        *files,
        ConfigFile(dest=TRIGGER, template="recover_cuda/hearth-recover-cuda-trigger.py.j2", mode="0755"),
        ConfigFile(dest=SOCKET, template="recover_cuda/hearth-recover-cuda-trigger.socket.j2",
                   context={"address": str(inv.hosts[name].overlay_ip), "port": PORT}),
        ConfigFile(dest=TRIGGER_UNIT, template="recover_cuda/hearth-recover-cuda-trigger@.service.j2",
                   context={"trigger": TRIGGER, "token": TOKEN, "allowed": [gateway_ip]}),
    ]


def token_placeholder() -> str:
    return placeholder("HMAC of the admin token for this host")
