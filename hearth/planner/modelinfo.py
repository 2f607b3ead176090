"""A model the engine already has, against the planner's numbers for it.

Ollama's ``/api/show`` reports a model's GGUF metadata as ``model_info``
(``general.architecture``, then ``<arch>.block_count``, ``<arch>.attention.head_count_kv``,
``<arch>.attention.key_length``, ``general.parameter_count``; Ollama's API docs,
"Show Model Information"). When those differ from what the inventory or the catalogue
says, the plan was made for another model: the deploy reports it per host and model,
like any other drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hearth.inventory.model import ArchSpec

PARAMS_TOLERANCE = 0.05  # a tied head or a vision tower moves the count by a few percent


@dataclass(frozen=True)
class ModelDrift:
    """One number the engine reports differently from the plan."""

    field: str
    planned: str
    engine: str


def numbers(info: dict[str, Any]) -> dict[str, float]:
    """The planner's fields as the engine reports them (only those it reports)."""
    arch = info.get("general.architecture")
    if not arch:
        return {}
    found: dict[str, float] = {}
    for field, key in (("layers", "block_count"), ("kv_heads", "attention.head_count_kv"),
                       ("head_dim", "attention.key_length")):  # fmt: skip
        value = info.get(f"{arch}.{key}")
        if isinstance(value, list):  # per-layer KV heads: the planner uses the largest
            value = max(value) if value else None
        if isinstance(value, int | float):
            found[field] = float(value)
    if "head_dim" not in found:
        heads, width = info.get(f"{arch}.attention.head_count"), info.get(f"{arch}.embedding_length")
        if isinstance(heads, int) and isinstance(width, int) and heads:
            found["head_dim"] = float(width // heads)
    params = info.get("general.parameter_count")
    if isinstance(params, int | float):
        found["params_b"] = params / 1e9
    return found


def compare(arch: ArchSpec, info: dict[str, Any]) -> list[ModelDrift]:
    """Where the engine's numbers differ from the architecture the plan used.

    Example:
        compare(CATALOGUE["llama-3.1-8b"], {"general.architecture": "llama", "llama.block_count": 28})
        # -> [ModelDrift("layers", "32", "28")]
    """
    drifts = []
    for field, value in numbers(info).items():
        planned = float(getattr(arch, field))
        if field == "params_b":
            if abs(value - planned) > PARAMS_TOLERANCE * planned:
                drifts.append(ModelDrift(field, f"{planned:.2f}B", f"{value:.2f}B"))
        elif value != planned:
            drifts.append(ModelDrift(field, f"{planned:g}", f"{value:g}"))
    return drifts


def drift_line(host: str, model: str, arch_name: str, drifts: list[ModelDrift]) -> str:
    """One line for the deploy's output: which host, which model, which numbers."""
    what = ", ".join(f"{d.field} {d.engine} (plan: {d.planned})" for d in drifts)
    return (f"{host}: {model} as served reports {what}; the plan used the '{arch_name}' architecture: "
            "set the serve's arch, or describe the model under models: (`hearth models describe`)")
