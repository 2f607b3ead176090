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

``KEYS``: the keys vLLM 0.11.0 reads inside its JSON-valued flags (same wheel; rope_scaling
also from ``transformers-4.55.2-py3-none-any.whl``, the lowest transformers the release
requires), and a build that reads more declares them the same way (``{FLAG: [KEY, ...]}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Values:
    """The values vLLM accepts for one flag (``flag.key``: a key of a JSON-valued flag)."""

    choices: tuple[str, ...]
    source: str  # where the release fixes them (file: name)
    any_case: bool = False  # the release upper-cases the value before it looks it up

    def takes(self, value: object) -> bool:
        text = str(value)
        return text in self.choices or (self.any_case and text.upper() in self.choices)


@dataclass(frozen=True)
class Keys:
    """The keys vLLM reads in one JSON-valued flag (``flag``, or ``flag.key`` for a mapping in it).

    ``needs``: for a mapping whose kind is named by one of the ``by`` keys (rope_scaling's
    ``rope_type`` and its legacy ``type``), the keys that kind cannot do without; each group
    is a set of alternatives, one of which must be there.
    """

    keys: tuple[str, ...]
    source: str
    by: tuple[str, ...] = ()
    needs: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)


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

# rope_scaling (--rope-scaling, or --hf-overrides' rope_scaling: either replaces the model's
# whole rope_scaling): the kinds get_rope builds (vllm/model_executor/layers/rotary_embedding/
# __init__.py, else "Unknown RoPE scaling type") and the legacy su/mrope that
# vllm/transformers_utils/config.py patch_rope_scaling_dict renames (transformers 4.55.2's
# ROPE_INIT_FUNCTIONS are a subset); the keys: every key vLLM 0.11.0 reads in it (get_rope and its
# extra_kwargs, patch_rope_scaling_dict, config/model.py _get_and_verify_max_len, the models), plus
# transformers 4.55.2's modeling_rope_utils (attention_factor, truncate); the needs: what get_rope
# (and patch_rope_scaling_dict for mrope) looks up without a default.
ROPE_TYPES = Values(
    ("default", "linear", "ntk", "dynamic", "yarn", "deepseek_yarn", "longrope", "llama3", "mllama4", "su", "mrope"),
    "vllm/model_executor/layers/rotary_embedding/__init__.py: get_rope (su, mrope: "
    "vllm/transformers_utils/config.py patch_rope_scaling_dict)")
ROPE_KEYS = Keys(
    ("rope_type", "type", "factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor",
     "mixed_b", "alpha", "extrapolation_factor", "attn_factor", "attention_factor", "beta_fast", "beta_slow",
     "mscale", "mscale_all_dim", "short_factor", "long_factor", "short_mscale", "long_mscale", "mrope_section",
     "mrope_interleaved", "truncate"),
    "vllm/model_executor/layers/rotary_embedding/__init__.py get_rope, vllm/transformers_utils/config.py "
    "patch_rope_scaling_dict, the models; transformers 4.55.2 modeling_rope_utils.py",
    by=("rope_type", "type"),
    needs={
        "linear": (("factor",),), "ntk": (("factor",),), "dynamic": (("factor", "alpha"),),
        "yarn": (("factor",), ("original_max_position_embeddings",)),
        "deepseek_yarn": (("factor",), ("original_max_position_embeddings",)),
        "longrope": (("short_factor",), ("long_factor",), ("original_max_position_embeddings",)),
        "su": (("short_factor",), ("long_factor",), ("original_max_position_embeddings",)),
        "llama3": (("factor",), ("low_freq_factor",), ("high_freq_factor",), ("original_max_position_embeddings",)),
        "mrope": (("mrope_section",),),
    })
POOLING_TYPES = Values(("LAST", "ALL", "CLS", "STEP", "MEAN"),
                       "vllm/model_executor/layers/pooler.py: PoolingType (looked up by name)")

# The keys of the JSON-valued flags vLLM 0.11.0 builds a config class from: the class's
# init fields (vllm/config/*.py, read in the release wheel). pydantic drops a key it does
# not know without a word, so a misspelt key would silently do nothing. Not here: flags whose
# keys are free (hf-overrides: any model config attribute; additional-config: the platform's;
# mm-processor-kwargs, model-loader-extra-config, override-generation-config, limit-mm-per-prompt,
# media-io-kwargs, default-mm-loras: the model's or loader's own).
POOLER_KEYS = Keys(
    ("pooling_type", "normalize", "dimensions", "enable_chunked_processing", "max_embed_len", "activation",
     "logit_bias", "softmax", "step_tag_id", "returned_token_ids"),
    "vllm/config/pooler.py: PoolerConfig fields")
KEYS: dict[str, dict[str, Keys]] = {
    "0.11.0": {
        "rope-scaling": ROPE_KEYS,
        "hf-overrides.rope_scaling": ROPE_KEYS,
        "compilation-config": Keys(
            ("level", "debug_dump_path", "cache_dir", "backend", "custom_ops", "splitting_ops", "use_inductor",
             "compile_sizes", "inductor_compile_config", "inductor_passes", "cudagraph_mode", "use_cudagraph",
             "cudagraph_num_of_warmups", "cudagraph_capture_sizes", "cudagraph_copy_inputs", "full_cuda_graph",
             "use_inductor_graph_partition", "pass_config"),
            "vllm/config/compilation.py: CompilationConfig fields (not the init=False ones vLLM fills in)"),
        "compilation-config.pass_config": Keys(
            ("enable_fusion", "enable_attn_fusion", "enable_noop", "enable_sequence_parallelism", "enable_async_tp",
             "enable_fi_allreduce_fusion", "fi_allreduce_fusion_max_token_num"),
            "vllm/config/compilation.py: PassConfig fields"),
        "speculative-config": Keys(
            ("enforce_eager", "num_speculative_tokens", "model", "method", "draft_tensor_parallel_size",
             "disable_logprobs", "quantization", "max_model_len", "revision", "code_revision",
             "disable_by_batch_size", "disable_padded_drafter_batch", "prompt_lookup_max", "prompt_lookup_min",
             "speculative_token_tree"),
            "vllm/config/speculative.py: SpeculativeConfig fields (not target_*, enable_chunked_prefill, "
            "disable_log_stats: vllm/engine/arg_utils.py create_speculative_config overwrites them; not draft_*: "
            "initialised internally)"),
        "structured-outputs-config": Keys(
            ("backend", "disable_fallback", "disable_any_whitespace", "disable_additional_properties",
             "reasoning_parser"),
            "vllm/config/structured_outputs.py: StructuredOutputsConfig fields"),
        "kv-transfer-config": Keys(
            ("kv_connector", "engine_id", "kv_buffer_device", "kv_buffer_size", "kv_role", "kv_rank",
             "kv_parallel_size", "kv_ip", "kv_port", "kv_connector_extra_config", "kv_connector_module_path"),
            "vllm/config/kv_transfer.py: KVTransferConfig fields"),
        "kv-events-config": Keys(
            ("enable_kv_cache_events", "publisher", "endpoint", "replay_endpoint", "buffer_steps", "hwm",
             "max_queue_size", "topic"),
            "vllm/config/kv_events.py: KVEventsConfig fields"),
        "eplb-config": Keys(
            ("window_size", "step_interval", "num_redundant_experts", "log_balancedness"),
            "vllm/config/parallel.py: EPLBConfig fields"),
        "pooler-config": POOLER_KEYS,
        "override-pooler-config": POOLER_KEYS,
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
        "rope-scaling.rope_type": ROPE_TYPES,
        "rope-scaling.type": ROPE_TYPES,
        "hf-overrides.rope_scaling.rope_type": ROPE_TYPES,
        "hf-overrides.rope_scaling.type": ROPE_TYPES,
        "compilation-config.cudagraph_mode": Values(
            ("NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"),
            "vllm/config/compilation.py: CUDAGraphMode (validate_cudagraph_mode_before upper-cases)", any_case=True),
        "kv-transfer-config.kv_role": Values(
            ("kv_producer", "kv_consumer", "kv_both"), "vllm/config/kv_transfer.py: KVRole"),
        "kv-events-config.publisher": Values(
            ("null", "zmq"), "vllm/distributed/kv_events.py: EventPublisherFactory._registry"),
        "pooler-config.pooling_type": POOLING_TYPES,
        "override-pooler-config.pooling_type": POOLING_TYPES,
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


def release_keys(version: str) -> dict[str, Keys]:
    """The key sets of release ``version``'s JSON-valued flags (empty when none are recorded)."""
    return KEYS.get(version.split("+")[0], {})


def without_effect(version: str) -> dict[str, str]:
    return WITHOUT_EFFECT.get(version.split("+")[0], {})
