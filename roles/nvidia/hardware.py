"""The GPUs nvidia-smi reports against the inventory (see main.py): drift, re-plan, refusal."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import nvidia as configs
from hearth.inventory import load_cached
from hearth.operations import nvidia as nvidia_ops


@deploy("nvidia")
def check_hardware() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    nvidia_ops.gpus_match_inventory(
        name="GPUs match the inventory (drift report, VRAM re-plan)",
        inventory=host.data.hearth_inventory, host_name=name, nvidia_smi=str(host.data.nvidia_smi),
        driver_branch=configs.branch(inv, name) if host.data.nvidia_manage_driver else None,
    )


check_hardware()
