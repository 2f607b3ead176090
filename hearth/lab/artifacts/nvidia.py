"""The NVIDIA stand-ins in the lab's apt repository.

The container-toolkit stand-in package (``tests/standins/debs/nvidia-container-toolkit``)
also carries the nvidia-smi stand-in (``tests/standins/nvidia-smi``) at
``/usr/lib/hearth-standin/nvidia-smi`` with a table of the GPUs the lab's inventory
declares per machine, so each machine reports its own cards. The real Debian
nvidia-smi (from the real driver packages) stays where it is; the lab inventory
points the ``nvidia_smi`` setting at the stand-in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hearth.lab.state import load_record

STANDIN_SMI = "usr/lib/hearth-standin/nvidia-smi"
GPU_TABLE = "usr/share/hearth-standin/nvidia-smi/gpus.json"
TOOLKIT = "nvidia-container-toolkit"


def product_name(model: str) -> str:
    """What nvidia-smi calls a card the inventory names ('RTX 3060' -> 'NVIDIA GeForce RTX 3060')."""
    if model.upper().startswith("NVIDIA"):
        return model
    if model.startswith(("RTX ", "GTX ")) and not model.startswith("RTX PRO"):
        return f"NVIDIA GeForce {model}"
    return f"NVIDIA {model}"


def gpu_table(inventory: Path | None) -> dict[str, list[dict[str, Any]]]:
    """Host name -> the NVIDIA GPUs its inventory entry declares, as the stand-in reports them."""
    if inventory is None or not inventory.exists():
        return {}
    from hearth.deploy_data import group_defaults
    from hearth.inventory import load_inventory

    inv = load_inventory(inventory, group_defaults())
    table: dict[str, list[dict[str, Any]]] = {}
    for name, host in inv.hosts.items():
        gpus = [gpu for gpu in host.gpus if gpu.vendor == "nvidia"]
        if host.os != "linux" or not gpus:
            continue
        table[name] = [{
            "name": product_name(gpu.model),
            "memory_mib": 0 if gpu.unified_memory else round(gpu.vram_gb * 1024),
            "power_limit_w": gpu.power_limit_w or 200, "power_min_w": 100, "power_max_w": 450,
        } for gpu in gpus]  # fmt: skip
    return table


def lab_inventory(root: Path) -> Path | None:
    record = load_record(root)
    return Path(record.inventory) if record is not None else None


def toolkit_tree(src: Path, standins: Path, work: Path, root: Path) -> Path:
    """A copy of the toolkit stand-in's package tree with the nvidia-smi stand-in and the GPU table added."""
    tree = work / src.name
    shutil.copytree(src, tree)
    smi = tree / STANDIN_SMI
    smi.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(standins / "nvidia-smi" / "nvidia-smi.py", smi)
    smi.chmod(0o755)
    table = tree / GPU_TABLE
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(json.dumps(gpu_table(lab_inventory(root)), indent=2, sort_keys=True) + "\n")
    return tree
