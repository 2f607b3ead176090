"""Model names as people type them: Ollama tags and Hugging Face repository ids.

``llama3.2:3b``, ``qwen2.5-coder:14b-instruct-q4_K_M``, ``nomic-embed-text``,
``Qwen/Qwen2.5-VL-7B-Instruct-AWQ`` all name an architecture (looked up in the
catalogue's aliases) and, sometimes, a quantisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hearth.planner import quants

# Words a repository or tag adds to a model's name that do not change its architecture.
VARIANTS = ("instruct", "it", "chat", "hf", "base", "text", "latest")
SIZE = re.compile(r"^(\d+(\.\d+)?[bm]|\d+x\d+b|e\d+b|l\d+-v\d+)$")


@dataclass(frozen=True)
class ModelName:
    """What a model name says: names to look up (most specific first) and a quant, if any."""

    candidates: tuple[str, ...]
    quant: str | None


def parse(model: str) -> ModelName:
    """Read an Ollama tag or a Hugging Face id.

    Example:
        parse("qwen2.5-coder:14b-instruct-q4_K_M")
        # -> ModelName(("qwen2.5-coder:14b-instruct-q4_k_m", "qwen2.5-coder:14b", ...), "q4_k_m")
    """
    name = model.strip().lower().rsplit("/", 1)[-1]
    if ":" in name:
        return _ollama(name)
    return _repository(name)


def _ollama(name: str) -> ModelName:
    family, tag = name.split(":", 1)
    parts = tag.split("-")
    quant = None
    for cut in range(len(parts)):  # a quant is the tag's tail: q4_K_M, fp16, iq4_xs
        tail = "-".join(parts[cut:])
        if quants.normalise(tail) is not None:
            quant, parts = quants.normalise(tail), parts[:cut]
            break
    kept = [p for p in parts if p not in VARIANTS]
    candidates = [name, f"{family}:{'-'.join(parts)}", f"{family}:{'-'.join(kept)}"]
    sizes = [p for p in parts if SIZE.match(p)]
    if sizes:
        candidates.append(f"{family}:{sizes[0]}")
    if not kept or tag == "latest":
        candidates.append(family)
    return ModelName(tuple(dict.fromkeys(c for c in candidates if not c.endswith(":"))), quant)


def _repository(name: str) -> ModelName:
    candidates = [name]
    quant = None
    stem = name
    changed = True
    while changed:
        changed = False
        for suffix in sorted({*quants.QUANTS, *quants.SYNONYMS, "gguf", "bnb-4bit", "4bit", "8bit"}, key=len,
                             reverse=True):  # fmt: skip
            if stem.endswith("-" + suffix):
                quant = quant or quants.normalise(suffix)
                stem, changed = stem[: -len(suffix) - 1], True
                candidates.append(stem)
                break
        for variant in VARIANTS:
            if stem.endswith("-" + variant):
                stem, changed = stem[: -len(variant) - 1], True
                candidates.append(stem)
    return ModelName(tuple(dict.fromkeys(candidates)), quant)
