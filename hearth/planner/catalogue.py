"""The planner's model catalogue: the architectures in ``models.yaml`` (data, with sources).

Each entry carries the numbers of its published ``config.json``; from them come the
numbers the planner uses (layers, KV heads, head dimension, embedding parameters) and
the parameter count the architecture implies, which a unit test holds against the
published count. Names resolve through the entries' aliases (Ollama tags, Hugging
Face repository names): see :mod:`hearth.planner.names`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hearth.inventory.model import ArchSpec
from hearth.planner import names, quants

DATA = Path(__file__).with_name("models.yaml")
DEFAULT_OLLAMA_QUANT = "q4_k_m"  # what Ollama's library serves for a tag that names no quant


@dataclass(frozen=True)
class Entry:
    """One catalogue architecture: the planner's numbers and the config they came from."""

    name: str
    arch: ArchSpec
    config: dict[str, Any]
    aliases: tuple[str, ...]
    ollama_quant: str
    estimate: bool


def implied_params_b(config: dict[str, Any]) -> float:
    """Billions of parameters the config.json numbers add up to (embeddings, attention, MLP).

    Example:
        implied_params_b(entry("llama-3.2-3b").config)  # ~3.21
    """
    h, layers, vocab = config["hidden"], config["layers"], config["vocab"]
    heads = config["heads"]
    head_dim = config.get("head_dim") or h // heads
    inter = config["intermediate"]
    if config.get("kind") == "encoder":
        return _encoder_params(config, h, layers, vocab, inter) / 1e9
    kv = config["kv_heads"]
    q, k = heads * head_dim, kv * head_dim
    attention = h * q + 2 * h * k + q * h + (q + 2 * k if config.get("qkv_bias") else 0)
    mlp = 3 * h * inter
    moe = config.get("moe")
    if moe:
        experts = moe["experts"] + moe.get("shared_experts", 0)
        dense = moe.get("dense_layers", 0)
        moe_mlp = experts * 3 * h * moe["expert_intermediate"] + h * moe["experts"]
        layer_total = attention * layers + mlp * dense + moe_mlp * (layers - dense)
    else:
        layer_total = (attention + mlp) * layers
    embeddings = vocab * h * (1 if config.get("tied") else 2)
    norms = 2 * h * layers + h
    return (embeddings + layer_total + norms) / 1e9


def _encoder_params(config: dict[str, Any], h: int, layers: int, vocab: int, inter: int) -> int:
    biases = config.get("biases", True)
    attention = 4 * h * h + (4 * h if biases else 0)
    mlp = (3 * h * inter) if config.get("gated_mlp") else (2 * h * inter + (inter + h if biases else 0))
    embeddings = vocab * h + config.get("positions", 0) * h + 2 * h
    pooler = h * h + h if config.get("positions") else 0  # BERT checkpoints keep their pooler
    return embeddings + (attention + mlp + 4 * h) * layers + pooler


def _entry(name: str, data: dict[str, Any]) -> Entry:
    config = {k: v for k, v in data.items() if k not in {"source", "aliases", "ollama_quant", "estimate"}}
    estimate = bool(data.get("estimate"))
    if estimate:
        embed = float(data.get("embed_params_b", 0.0))
    else:
        embed = data["vocab"] * data["hidden"] * (1 if data.get("tied") else 2) / 1e9
    head_dim = data.get("head_dim") or (data["hidden"] // data["heads"])
    arch = ArchSpec(
        params_b=data["params_b"], layers=data["layers"], kv_heads=data.get("kv_heads", data.get("heads", 1)),
        head_dim=head_dim, embed_params_b=round(embed, 3), vision_params_b=data.get("vision_params_b", 0.0),
        sliding_window=data.get("sliding_window"), sliding_window_layers=data.get("sliding_window_layers", 0),
        kind=data.get("kind", "decoder"), source=data["source"],
    )  # fmt: skip
    return Entry(name, arch, config, tuple(a.lower() for a in data.get("aliases", [])),
                 data.get("ollama_quant", DEFAULT_OLLAMA_QUANT), estimate)  # fmt: skip


@cache
def entries() -> dict[str, Entry]:
    """Every catalogue entry by name, read once from models.yaml."""
    raw = yaml.safe_load(DATA.read_text())
    return {name: _entry(name, data) for name, data in raw.items()}


def entry(name: str) -> Entry:
    return entries()[name]


CATALOGUE: dict[str, ArchSpec] = {name: e.arch for name, e in entries().items()}
ALIASES: dict[str, str] = {alias: name for name, e in entries().items() for alias in (name, *e.aliases)}


def find_arch(
    name: str | None, model: str, custom: dict[str, ArchSpec]
) -> tuple[str, ArchSpec] | None:
    """Find the architecture for a served model: explicit name first, then the model's name.

    Example:
        find_arch(None, "qwen2.5-coder:14b-instruct-q4_K_M", {})  # -> ("qwen2.5-14b", ArchSpec(...))
    """
    known = {**CATALOGUE, **custom}
    if name is not None:
        return (name, known[name]) if name in known else None
    for candidate in names.parse(model).candidates:
        key = candidate if candidate in custom else ALIASES.get(candidate, candidate)
        if key in known:
            return key, known[key]
    return None


def ollama_quant(arch_name: str) -> str:
    """The quant Ollama's library serves for this architecture's plain tags."""
    found = entries().get(arch_name)
    return quants.normalise(found.ollama_quant if found else None) or DEFAULT_OLLAMA_QUANT
