"""Role nvidia: the NVIDIA stack on hosts with NVIDIA GPUs in the inventory (group `nvidia`).

One file per concern, in this order:

    driver.py     the distribution's driver (pinned branch), nouveau blacklisted, persistence
                  mode, power limits; a reboot only when the inventory allows it, one host at a time
    toolkit.py    nvidia-container-toolkit from NVIDIA's apt repository (or a mirror)
    hardware.py   the GPUs nvidia-smi reports against the inventory: drift report, VRAM
                  re-plan, and a refusal when the serving settings no longer fit

deploy.py applies it before k3s (so k3s finds the runtime at its first start) and
before the serving roles; `k3s_runtime.py` (after k3s) restarts k3s when the toolkit
changed under it, and `cluster.py` puts the device plugin on the k3s servers.
"""

from pyinfra import local

local.include("roles/nvidia/driver.py")
local.include("roles/nvidia/toolkit.py")
local.include("roles/nvidia/hardware.py")
