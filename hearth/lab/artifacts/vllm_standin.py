"""Build the vLLM stand-in wheel (tests/standins/vllm) for the lab's package index.

The wheel carries the pinned release's recorded `vllm serve` argument list
(hearth/vllm_flags) and the VRAM planner's numbers (hearth.planner), so the
stand-in refuses what the real release would refuse, and a `vllm` console script
as the real package has. Its version is the pinned release with a `+standin`
local label: an inventory pins it like a release (`vllm_version: 0.11.0+standin`).
"""

from __future__ import annotations

import json
from pathlib import Path

from hearth import vllm_flags
from hearth.lab.artifacts import pyindex
from hearth.lab.cycle import REPO

SOURCE = REPO / "tests" / "standins" / "vllm" / "vllm"


def standin_version() -> str:
    from hearth.deploy_data import group_defaults

    return f"{group_defaults()['vllm_version']}+standin"


def memory_numbers() -> dict[str, object]:
    """What the stand-in's start-up memory check needs, from the planner itself."""
    import hearth.inventory  # noqa: F401  (loads the planner in the order it expects)
    from hearth.planner import catalogue, quants, vram

    return {
        "catalogue": {name: arch.model_dump() for name, arch in catalogue.CATALOGUE.items()},
        "aliases": catalogue.ALIASES,
        "bits_per_weight": {name: q.bits for name, q in quants.QUANTS.items()},
        "sixteen_bit_embeddings": sorted(name for name, q in quants.QUANTS.items() if q.sixteen_bit_embeddings),
        "kv_bytes": vram.KV_BYTES,
        "overhead_gb": vram.VLLM_OVERHEAD_GB,
    }


def build_wheel(out_dir: Path, version: str | None = None) -> Path:
    """``vllm-<version>-py3-none-any.whl`` in ``out_dir``."""
    version = version or standin_version()
    init = (SOURCE / "__init__.py").read_text().replace(
        '__version__ = "0.0.0"', f'__version__ = "{version}"', 1)
    modules = {
        "vllm/__init__.py": init,
        "vllm/__main__.py": (SOURCE / "__main__.py").read_text(),
        "vllm/metrics.py": (SOURCE / "metrics.py").read_text(),
        "vllm/flags.json": json.dumps(vllm_flags.load(version), indent=1) + "\n",
        "vllm/memory.json": json.dumps(memory_numbers(), indent=1, sort_keys=True) + "\n",
        f"vllm-{version}.dist-info/entry_points.txt": "[console_scripts]\nvllm = vllm:main\n",
    }
    return pyindex.build_wheel(out_dir, "vllm", version, modules)
