"""Values a vLLM release fixes for `vllm serve` flags its argument parser takes as free text.

The recorded parser (``vllm-<version>.json``) already carries the ``choices`` argparse
enforces (``--kv-cache-dtype``, ``--dtype``, ``--block-size``...) and the quantization
methods. Some flags are plain strings to argparse but a fixed set to the release: it
refuses anything else later, when the engine starts on the host (or, worse, quietly
ignores it). Those sets are listed here per release, each with the file of the release
that fixes it, so validation refuses a wrong value before any host is touched.

Source: vLLM v0.11.0, read in the release wheel ``vllm-0.11.0-cp38-abi3-manylinux1_x86_64.whl``
(sha256 3861c75f..., the wheel ``vllm-0.11.0.json`` was generated from; built from the git
tag ``v0.11.0``). A build with more (a fork, a plugin registering a loader or a parser)
declares them per host: ``settings: {vllm_extra_choices: {FLAG: [VALUE, ...]}}``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Values:
    """The values vLLM accepts for one flag (``flag.key``: a key of a JSON-valued flag)."""

    choices: tuple[str, ...]
    source: str  # where the release fixes them (file: name)


# Flags the release still parses but ignores: refused, with what to write instead.
WITHOUT_EFFECT: dict[str, dict[str, str]] = {
    "0.11.0": {
        # vllm/engine/arg_utils.py (create_engine_config) copies them onto
        # StructuredOutputsConfig attributes nothing reads (its fields are backend, disable_*).
        "guided-decoding-backend": "structured-outputs-config: {backend: ...}",
        "guided-decoding-disable-fallback": "structured-outputs-config: {disable_fallback: true}",
        "guided-decoding-disable-any-whitespace": "structured-outputs-config: {disable_any_whitespace: true}",
        "guided-decoding-disable-additional-properties":
            "structured-outputs-config: {disable_additional_properties: true}",
    },
}

VALUES: dict[str, dict[str, Values]] = {
    "0.11.0": {
        "config-format": Values(
            ("auto", "hf", "mistral"),
            "vllm/transformers_utils/config.py: ConfigFormat (get_config_parser refuses others)"),
        "load-format": Values(
            ("auto", "bitsandbytes", "dummy", "fastsafetensors", "gguf", "mistral", "npcache", "pt",
             "runai_streamer", "runai_streamer_sharded", "safetensors", "sharded_state", "tensorizer"),
            "vllm/model_executor/model_loader/__init__.py: LoadFormats (get_model_loader refuses others)"),
        "model-impl": Values(
            ("auto", "vllm", "transformers", "terratorch"),
            "vllm/config/model.py: ModelImpl"),
        "data-parallel-backend": Values(
            ("mp", "ray"),
            "vllm/config/parallel.py: ParallelConfig.data_parallel_backend (arg_utils.py asserts ray or mp)"),
        "distributed-executor-backend": Values(
            ("ray", "mp", "uni", "external_launcher"),
            "vllm/config/parallel.py: DistributedExecutorBackend (vllm/v1/executor/abstract.py "
            "Executor.get_class takes any other string as the import path of an executor class: "
            "declare such a class in settings vllm_extra_choices)"),
        "safetensors-load-strategy": Values(
            ("lazy", "eager"),
            "vllm/config/load.py: LoadConfig.safetensors_load_strategy (anything but eager loads lazily)"),
        "tool-call-parser": Values(
            ("deepseek_v3", "deepseek_v31", "glm45", "granite", "granite-20b-fc", "hermes", "hunyuan_a13b",
             "internlm", "jamba", "kimi_k2", "llama3_json", "llama4_json", "llama4_pythonic", "longcat",
             "minimax", "mistral", "openai", "phi4_mini_json", "pythonic", "qwen3_coder", "qwen3_xml",
             "seed_oss", "step3", "xlam"),
            "vllm/entrypoints/openai/tool_parsers/: ToolParserManager.register_module names "
            "(api_server.py validate_api_server_args refuses others)"),
        "speculative-config.method": Values(
            ("ngram", "eagle", "eagle3", "medusa", "mlp_speculator", "draft_model", "deepseek_mtp",
             "ernie_mtp", "qwen3_next_mtp", "mimo_mtp", "longcat_flash_mtp", "mtp"),
            "vllm/config/speculative.py: SpeculativeMethod (a pydantic Literal)"),
        "structured-outputs-config.backend": Values(
            ("auto", "xgrammar", "guidance", "outlines", "lm-format-enforcer"),
            "vllm/config/structured_outputs.py: StructuredOutputsBackend (a pydantic Literal)"),
    },
}

# Where the recorded parser's own choices come from in the same release (for the docs
# and the messages; the values themselves are the recorded parser's).
PARSER_SOURCES: dict[str, str] = {
    "kv-cache-dtype": "vllm/config/cache.py: CacheDType",
    "dtype": "vllm/config/model.py: ModelDType",
    "quantization": "vllm/model_executor/layers/quantization/__init__.py: QuantizationMethods",
    "block-size": "vllm/config/cache.py: BlockSize",
    "tokenizer-mode": "vllm/config/model.py: TokenizerMode",
    "reasoning-parser": "vllm/reasoning/: ReasoningParserManager.register_module names",
}


def release_values(version: str) -> dict[str, Values]:
    """The fixed value sets of release ``version`` (empty when none are recorded)."""
    return VALUES.get(version.split("+")[0], {})


def without_effect(version: str) -> dict[str, str]:
    return WITHOUT_EFFECT.get(version.split("+")[0], {})
