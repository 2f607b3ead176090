"""A small, cited catalogue of the model architectures the source labs run.

Numbers come from each model's published ``config.json`` (parameter count,
``num_hidden_layers``, ``num_key_value_heads``, ``head_dim`` or
``hidden_size / num_attention_heads``, vocabulary x hidden for the embeddings).
Where a model in the seeds has no published config in our sources, the entry says
which published sibling its layout is taken from: treat it as an estimate and
override it under ``models:`` in the inventory once the real config is known.
"""

from __future__ import annotations

from hearth.inventory.model import ArchSpec

HF = "https://huggingface.co/{}/blob/main/config.json"


def _arch(source: str, **numbers: float) -> ArchSpec:
    return ArchSpec(source=source, **numbers)  # type: ignore[arg-type]


CATALOGUE: dict[str, ArchSpec] = {
    "qwen2.5-1.5b": _arch(
        HF.format("Qwen/Qwen2.5-1.5B-Instruct"),
        params_b=1.54, layers=28, kv_heads=2, head_dim=128, embed_params_b=0.23,
    ),
    "qwen2.5-7b": _arch(
        HF.format("Qwen/Qwen2.5-7B-Instruct"),
        params_b=7.62, layers=28, kv_heads=4, head_dim=128, embed_params_b=1.09,
    ),
    "qwen2.5-14b": _arch(
        HF.format("Qwen/Qwen2.5-14B-Instruct"),
        params_b=14.77, layers=48, kv_heads=8, head_dim=128, embed_params_b=1.56,
    ),
    "qwen2.5-vl-7b": _arch(
        HF.format("Qwen/Qwen2.5-VL-7B-Instruct"),
        params_b=7.62, layers=28, kv_heads=4, head_dim=128, embed_params_b=1.09,
        vision_params_b=0.67,
    ),
    "llama-3.1-8b": _arch(
        HF.format("meta-llama/Llama-3.1-8B-Instruct")
        + " (also DeepSeek-R1-Distill-Llama-8B)",
        params_b=8.03, layers=32, kv_heads=8, head_dim=128, embed_params_b=1.05,
    ),
    "deepseek-coder-6.7b": _arch(
        HF.format("deepseek-ai/deepseek-coder-6.7b-instruct"),
        params_b=6.74, layers=32, kv_heads=32, head_dim=128, embed_params_b=0.26,
    ),
    "qwen3-1.7b": _arch(
        HF.format("Qwen/Qwen3-1.7B"),
        params_b=2.03, layers=28, kv_heads=8, head_dim=128, embed_params_b=0.31,
    ),
    "qwen3.5-9b": _arch(
        "estimate: layout of " + HF.format("Qwen/Qwen3-8B") + " scaled to 9B parameters",
        params_b=9.0, layers=36, kv_heads=8, head_dim=128, embed_params_b=0.62,
    ),
    "glm-4.5-air": _arch(
        HF.format("zai-org/GLM-4.5-Air") + " (MoE, 106B total / 12B active)",
        params_b=106.0, layers=46, kv_heads=8, head_dim=128, embed_params_b=1.24,
    ),
    "qwen3.6-35b-a3b": _arch(
        "estimate: layout of " + HF.format("Qwen/Qwen3-30B-A3B")
        + " (MoE) scaled to 35B parameters",
        params_b=35.0, layers=48, kv_heads=4, head_dim=128, embed_params_b=0.62,
    ),
    "gemma-4-31b": _arch(
        "estimate: layout of " + HF.format("google/gemma-3-27b-it")
        + " (5 of 6 layers use a 1024-token sliding window) scaled to 31B parameters",
        params_b=31.0, layers=62, kv_heads=16, head_dim=128, embed_params_b=1.41,
        sliding_window=1024, sliding_window_layers=52,
    ),
}

# Names people and engines use for the same architecture: Ollama tags, Hugging Face
# repositories, served-model names. Matched after lower-casing and dropping the
# organisation prefix.
ALIASES: dict[str, str] = {
    "qwen2.5:1.5b": "qwen2.5-1.5b",
    "qwen2.5-coder:1.5b": "qwen2.5-1.5b",
    "qwen2.5:7b": "qwen2.5-7b",
    "qwen2.5-coder:7b": "qwen2.5-7b",
    "qwen2.5:14b": "qwen2.5-14b",
    "qwen2.5-coder:14b": "qwen2.5-14b",
    "qwen2.5-vl-7b-instruct": "qwen2.5-vl-7b",
    "qwen2.5-vl-7b-instruct-awq": "qwen2.5-vl-7b",
    "llama3.1:8b": "llama-3.1-8b",
    "deepseek-r1:8b": "llama-3.1-8b",
    "deepseek-coder:6.7b": "deepseek-coder-6.7b",
    "qwen3:1.7b": "qwen3-1.7b",
    "qwen3.5:9b": "qwen3.5-9b",
    "glm-4.5-air-awq": "glm-4.5-air",
    "qwen3.6-35b-a3b-fp8": "qwen3.6-35b-a3b",
}


def find_arch(
    name: str | None, model: str, custom: dict[str, ArchSpec]
) -> tuple[str, ArchSpec] | None:
    """Find the architecture for a served model: explicit name first, then aliases.

    Example:
        find_arch(None, "qwen2.5-coder:14b", {})  # -> ("qwen2.5-14b", ArchSpec(...))
    """
    known = {**CATALOGUE, **custom}
    if name is not None:
        return (name, known[name]) if name in known else None
    key = model.lower().rsplit("/", 1)[-1]
    key = ALIASES.get(key, key)
    return (key, known[key]) if key in known else None
