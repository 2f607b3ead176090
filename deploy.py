"""hearth: provision every host of the inventory, role by role, by group membership.

    pyinfra inventory/<lab>.py deploy.py

Each role is a file under roles/; pyinfra prints every step under the role's name
("base | ...", "overlay | ..."), so the output reads as a plan. The groups come
from the inventory (hearth/inventory/groups.py): a role never decides on its own
which hosts it applies to.
"""

from pyinfra import host, local, state

from hearth.connection import send_without_delay
from hearth.facts.system import DebianArch
from hearth.inventory import load_cached
from hearth.systems import configurable

# Nagle off on the SSH connection: each of the ~200 commands of a run is then one round
# trip instead of one plus a ~40 ms delayed-ACK stall (hearth/connection.py).
send_without_delay(state, host)

if "windows" in host.groups:
    # The Windows overlay key pair first: Linux peers read its public half when their
    # WireGuard configs are written (roles/overlay).
    local.include("roles/windows/keys.py")

# A host running a system hearth does not configure (hearth.systems.SUPPORTED) is
# skipped with one line, before any of its roles is planned; the others go on.
linux = "linux" in host.groups and configurable(host)

if linux:
    # Every artifact is chosen by the inventory's arch: a wrong one must stop here.
    want = load_cached(host.data.hearth_inventory).hosts[host.data.hearth_host].arch
    arch = host.get_fact(DebianArch) or "unknown (dpkg --print-architecture failed)"
    if arch != want:
        raise RuntimeError(
            f"host {host.data.hearth_host}: the inventory says arch {want} but the machine is "
            f"{arch} (dpkg --print-architecture); fix hosts.{host.data.hearth_host}.arch"
        )
    local.include("roles/base/main.py")
    local.include("roles/overlay/main.py")
    local.include("roles/firewall/main.py")

if linux and "sleepers" in host.groups:
    local.include("roles/wol/main.py")

# Before k3s (which finds nvidia-container-runtime at its first start) and before
# the serving roles (a GPU that no longer fits their settings stops them here).
if linux and "nvidia" in host.groups:
    local.include("roles/nvidia/main.py")

# k3s on servers and agents: pyinfra orders operations by where they are called and
# runs each on every host before the next, and roles/k3s calls the servers' start
# before the agents' token and start, and servers' restarts before agents'.
if linux and ("k3s_servers" in host.groups or "k3s_agents" in host.groups):
    local.include("roles/k3s/main.py")

if linux and "ollama" in host.groups:
    local.include("roles/ollama/main.py")

# vLLM after nvidia (a card that no longer fits the serving settings stops the host
# before its units change) and after k3s (k3s restarts for the container toolkit
# happen first, so vLLM's CUDA init is not disturbed); its units start one at a
# time, each ready before the next (roles/vllm).
if linux and "vllm" in host.groups:
    local.include("roles/vllm/main.py")

# CUDA recovery needs the GPU services it restarts: after ollama and vllm.
if linux and "nvidia" in host.groups and {"vllm", "ollama"} & set(host.groups):
    local.include("roles/recover_cuda/main.py")

if linux and "gateway" in host.groups:
    local.include("roles/gateway/main.py")
    # windows.reach ssh_tunnel: its key pair before the windows role puts the public half on the box
    local.include("roles/gateway/tunnels.py")

# Every Linux node reports its health: the node exporter on the overlay, and GPU metrics
# on NVIDIA hosts (after the nvidia role, whose nvidia-smi the GPU timer asks).
if linux:
    local.include("roles/telemetry/main.py")
    # After the serving roles: the healing timer restarts their units (GPU hosts only).
    local.include("roles/heal/main.py")
    # The inventory's optional monitoring host: Prometheus + Alertmanager (roles/monitoring
    # does nothing on other hosts).
    local.include("roles/monitoring/main.py")
    # Home Assistant sensors through MQTT discovery, from that Prometheus (monitoring host only)
    local.include("roles/home_assistant/main.py")

if "windows" in host.groups:
    local.include("roles/windows/main.py")

# From the gateway host, once every box is up (and its tunnel, if any): upstreams hearth
# does not install answer /v1/models with their served names (a report, never a failure).
if linux and "gateway" in host.groups:
    local.include("roles/upstreams/main.py")

# After k3s: restart it where the container toolkit changed under it; the device
# plugin goes into the k3s servers' auto-deploy folder when there are NVIDIA hosts
# (and leaves it when the inventory has none any more).
if "nvidia" in host.groups and ("k3s_servers" in host.groups or "k3s_agents" in host.groups):
    local.include("roles/nvidia/k3s_runtime.py")

if "k3s_servers" in host.groups:
    local.include("roles/nvidia/cluster.py")

# Pods reach the gateway as a Service whose EndpointSlice is the gateway's overlay address.
if linux and "k3s_servers" in host.groups:
    local.include("roles/gateway/cluster.py")

# Last on the host: the idle check reads the serving roles' engines (Ollama, vLLM), and a
# deploy that changes it (its clock then starts again) has no later step it could sleep under.
if linux and "sleepers" in host.groups:
    local.include("roles/sleep/main.py")
