"""`hearth models describe PATH`: the `models:` entry for a model the catalogue does not know.

Reads a GGUF file's header (the ``gguf`` package reads metadata and tensor shapes
without loading weights) or a Hugging Face ``config.json``, and prints the entry to
paste under ``models:`` in the inventory, with the numbers it used.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hearth.planner.catalogue import implied_params_b

ENCODERS = {"bert", "nomic-bert", "nomic_bert", "xlm-roberta", "xlm_roberta", "roberta", "jina-bert-v2", "mpnet"}


@dataclass
class Description:
    """A model's numbers: the planner's ``models:`` fields and where each came from."""

    name: str
    fields: dict[str, Any]
    used: dict[str, Any] = field(default_factory=dict)
    quant: str | None = None

    def entry(self) -> str:
        """The YAML to paste under ``models:``."""
        return yaml.safe_dump({"models": {self.name: self.fields}}, sort_keys=False).rstrip()


def describe(path: Path) -> Description:
    """Describe a GGUF file or a config.json (or a directory holding one)."""
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".gguf" or _is_gguf(path):
        return from_gguf(path)
    return from_config(path)


def _is_gguf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"GGUF"


def from_config(path: Path) -> Description:
    """From a Hugging Face config.json (text_config for vision-language models)."""
    raw = json.loads(path.read_text())
    text = raw.get("text_config") or raw.get("llm_config") or raw
    hidden, heads = text["hidden_size"], text["num_attention_heads"]
    kind = "encoder" if raw.get("model_type", "") in ENCODERS else "decoder"
    config: dict[str, Any] = {
        "kind": kind, "hidden": hidden, "layers": text["num_hidden_layers"], "heads": heads,
        "kv_heads": text.get("num_key_value_heads", heads), "head_dim": text.get("head_dim") or hidden // heads,
        "intermediate": text.get("intermediate_size") or text.get("n_inner") or 4 * hidden,
        "vocab": text.get("vocab_size") or raw.get("vocab_size"),
        "tied": bool(text.get("tie_word_embeddings", raw.get("tie_word_embeddings", False))),
        "qkv_bias": bool(text.get("attention_bias") or text.get("qkv_bias") or raw.get("model_type") == "qwen2"),
    }  # fmt: skip
    experts = text.get("num_experts") or text.get("n_routed_experts") or text.get("num_local_experts")
    if experts:
        config["moe"] = {"experts": experts,
                         "expert_intermediate": text.get("moe_intermediate_size") or config["intermediate"],
                         "shared_experts": text.get("n_shared_experts", 0),
                         "dense_layers": text.get("first_k_dense_replace", 0)}  # fmt: skip
    if kind == "encoder":
        config["positions"] = raw.get("max_position_embeddings", 0)
    params = implied_params_b(config)
    fields: dict[str, Any] = {
        "params_b": _billions(params * 1e9), "layers": config["layers"], "kv_heads": config["kv_heads"],
        "head_dim": config["head_dim"],
        "embed_params_b": _billions(config["vocab"] * hidden * (1 if config["tied"] else 2)),
    }  # fmt: skip
    window = text.get("sliding_window")
    if window and text.get("use_sliding_window", True):
        pattern = text.get("sliding_window_pattern")
        fields["sliding_window"] = window
        fields["sliding_window_layers"] = (
            config["layers"] - config["layers"] // pattern if pattern else config["layers"]
        )
    if kind == "encoder":
        fields["kind"] = "encoder"
    fields["source"] = f"config.json at {path} (params from the architecture)"
    name = (raw.get("_name_or_path") or path.parent.name or "model").rsplit("/", 1)[-1].lower()
    return Description(name, fields, used=config)


def from_gguf(path: Path) -> Description:
    """From a GGUF header: the architecture's metadata and the exact tensor element count."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("tokenizer.ggml.")}
    arch = str(meta["general.architecture"])

    def key(name: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{name}", default)

    heads = int(key("attention.head_count"))
    hidden = int(key("embedding_length"))
    kv = key("attention.head_count_kv", heads)
    params = sum(int(t.n_elements) for t in reader.tensors)
    fields: dict[str, Any] = {
        "params_b": _billions(params), "layers": int(key("block_count")),
        "kv_heads": int(kv if not isinstance(kv, list) else max(kv)),
        "head_dim": int(key("attention.key_length", hidden // heads)),
        "embed_params_b": _billions(sum(int(t.n_elements) for t in reader.tensors
                                        if t.name in {"token_embd.weight", "output.weight"})),
    }  # fmt: skip
    window = key("attention.sliding_window")
    if window:
        fields["sliding_window"] = int(window)
    if arch.replace("_", "-") in ENCODERS:
        fields["kind"] = "encoder"
    fields["source"] = f"GGUF header of {path.name} (tensor element count)"
    name = str(meta.get("general.basename") or meta.get("general.name") or path.stem).lower().replace(" ", "-")
    file_type = meta.get("general.file_type")
    return Description(name, fields, used={"architecture": arch, "tensors": len(reader.tensors),
                                           "file_type": file_type})  # fmt: skip


def _billions(count: float) -> float:
    """A parameter count in billions, to four significant digits (tiny test models too)."""
    return float(f"{count / 1e9:.4g}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `models describe` to the hearth CLI."""
    models = subparsers.add_parser("models", help="model architectures for the VRAM planner")
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = sub.add_parser("describe", help="print the `models:` entry for a GGUF file or a config.json")
    p.add_argument("path", type=Path)
    p.set_defaults(func=_describe)


def _describe(args: argparse.Namespace) -> int:
    try:
        found = describe(args.path)
    except (OSError, KeyError, ValueError) as exc:
        print(f"hearth models describe: {args.path}: cannot read the model's numbers: {exc}")
        return 1
    print(f"# numbers used: {json.dumps(found.used, default=str)}")
    print(found.entry())
    print(f"# then, in the serve: arch: {found.name}")
    return 0
