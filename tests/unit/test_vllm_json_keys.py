"""Validation knows the keys and the enumerated values inside vLLM 0.11.0's JSON-valued flags.

pydantic drops a key a config class does not know without a word, and rope_scaling replaces
the model's own, so a misspelt key or a missing one is caught here, before any host is touched.
The literal sets below were read in the v0.11.0 release wheel (file named beside each) to
cross-check ``hearth/vllm_flags/values.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth import vllm_flags
from hearth.configs import vllm as vllm_configs
from hearth.deploy_data import group_defaults
from hearth.inventory import InventoryError, load_inventory
from hearth.vllm_flags import values

RECORDED = vllm_flags.load("0.11.0")
# vllm/model_executor/layers/rotary_embedding/__init__.py get_rope's branches, and su / mrope
# (vllm/transformers_utils/config.py patch_rope_scaling_dict renames them)
ROPE_TYPES = {"default", "linear", "ntk", "dynamic", "yarn", "deepseek_yarn", "longrope", "llama3", "mllama4",
              "su", "mrope"}
# transformers 4.55.2 (vLLM 0.11.0 requires >= 4.55.2) modeling_rope_utils.ROPE_INIT_FUNCTIONS
TRANSFORMERS_ROPE_TYPES = {"default", "linear", "dynamic", "yarn", "longrope", "llama3"}
# vllm/config/speculative.py SpeculativeConfig: the fields a user passes
SPECULATIVE_KEYS = {"enforce_eager", "num_speculative_tokens", "model", "method", "draft_tensor_parallel_size",
                    "disable_logprobs", "quantization", "max_model_len", "revision", "code_revision",
                    "disable_by_batch_size", "disable_padded_drafter_batch", "prompt_lookup_max",
                    "prompt_lookup_min", "speculative_token_tree"}


def problems(write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None]) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(change), group_defaults())
    return caught.value.lines


def eyes(flags: dict[str, Any], settings: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["eyes"]["serves"][0]["flags"].update(flags)
        if settings is not None:
            data["hosts"]["eyes"]["settings"] = settings

    return change


def one(lines: list[str], flag: str) -> str:
    found = [line for line in lines if f"hosts.eyes.serves[0].flags.{flag}: " in line]
    assert len(found) == 1, lines
    path = found[0].partition(": ")[0]
    assert path.rsplit(":", 1)[0].endswith(".yml") and path.rsplit(":", 1)[1].isdigit(), found
    assert found[0].endswith("; serve qwen2.5-vl-7b-router-awq"), found
    return found[0]


def test_the_recorded_sets_are_the_release_source() -> None:
    assert set(values.ROPE_TYPES.choices) == ROPE_TYPES and TRANSFORMERS_ROPE_TYPES <= ROPE_TYPES
    assert set(values.KEYS["0.11.0"]["speculative-config"].keys) == SPECULATIVE_KEYS
    for name, keys in values.KEYS["0.11.0"].items():
        assert RECORDED["flags"][name.split(".")[0]]["kind"] in ("json", "json_or_str"), name
        assert keys.source.startswith("vllm/") and len(set(keys.keys)) == len(keys.keys), name
        for kind, groups in keys.needs.items():
            assert {k for group in groups for k in group} <= set(keys.keys), (name, kind)


@pytest.mark.parametrize(("flag", "bad", "message"), [
    ("rope-scaling", {"rope_type": "yarn2", "factor": 4.0}, "--rope-scaling rope_type must be one of default,"),
    ("rope-scaling", '{"type": "ntk-aware", "factor": 4.0}', "--rope-scaling type must be one of default,"),
    ("rope-scaling", {"rope_type": "dynamic", "factr": 2.0}, "--rope-scaling has no key 'factr' in vLLM 0.11.0 "
     "(did you mean factor?)"),
    ("rope-scaling", {"factor": 2.0}, "--rope-scaling needs rope_type or type"),
    ("rope-scaling", {"rope_type": "yarn", "type": "linear", "factor": 2.0}, "disagree"),
    ("rope-scaling", {"rope_type": "yarn", "factor": 4.0},
     "--rope-scaling yarn needs original_max_position_embeddings"),
    ("rope-scaling", {"rope_type": "dynamic"}, "--rope-scaling dynamic needs factor or alpha"),
    ("rope-scaling", {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192,
                      "low_freq_factor": 1.0}, "--rope-scaling llama3 needs high_freq_factor"),
    ("hf-overrides", {"rope_scaling": {"rope_type": "longrop", "factor": 2.0}},
     "--hf-overrides rope_scaling.rope_type must be one of default,"),
    ("hf-overrides", {"rope_scaling": {"rope_type": "linear", "scale": 2.0}}, "--hf-overrides rope_scaling has no key "
     "'scale'"),
    ("speculative-config", {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_maximum": 4},
     "--speculative-config has no key 'prompt_lookup_maximum' in vLLM 0.11.0 (did you mean prompt_lookup_max?)"),
    ("speculative-config", {"model": "x/y-awq", "num_speculative_tokens": 3, "quantization": "awq_turbo"},
     "--speculative-config quantization must be one of auto-round, awq,"),
    ("compilation-config", {"cudagraph_mode": "FULL_AND_PIECEWISE", "cuda_graph_sizes": [1, 2]},
     "--compilation-config has no key 'cuda_graph_sizes'"),
    ("compilation-config", {"cudagraph_mode": "full_piecewise"}, "--compilation-config cudagraph_mode must be one of"),
    ("compilation-config", {"pass_config": {"enable_fusion": True, "enable_noop_pass": True}},
     "--compilation-config pass_config has no key 'enable_noop_pass'"),
    ("structured-outputs-config", {"backend": "xgrammar", "disable_fallbacks": True},
     "--structured-outputs-config has no key 'disable_fallbacks'"),
    ("kv-transfer-config", {"kv_connector": "NixlConnector", "kv_role": "producer"},
     "--kv-transfer-config kv_role must be one of kv_producer, kv_consumer, kv_both"),
    ("kv-events-config", {"enable_kv_cache_events": True, "publisher": "kafka"},
     "--kv-events-config publisher must be one of null, zmq"),
    ("eplb-config", {"window": 1000}, "--eplb-config has no key 'window'"),
    ("override-pooler-config", {"pooling_type": "mean"}, "--override-pooler-config pooling_type must be one of LAST,"),
])  # fmt: skip
def test_a_key_or_value_inside_a_json_flag_is_refused_naming_what_is_allowed(
        write_inventory: Callable[..., Path], flag: str, bad: Any, message: str) -> None:
    line = one(problems(write_inventory, eyes({flag: bad})), flag)
    assert message in line, line
    assert "vLLM 0.11.0" in line and ("vllm/" in line or "disagree" in line), line
    if "has no key" in line:
        assert "it reads " in line and "settings vllm_extra_choices" in line


@pytest.mark.parametrize(("flag", "good"), [
    ("rope-scaling", {"rope_type": "dynamic", "factor": 2.0}),
    ("rope-scaling", {"rope_type": "dynamic", "alpha": 1000}),
    ("rope-scaling", '{"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}'),
    ("rope-scaling", {"rope_type": "llama3", "type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    ("rope-scaling", {"rope_type": "mrope", "mrope_section": [16, 24, 24]}),
    ("rope-scaling", {}),
    ("hf-overrides", {"rope_scaling": {"rope_type": "linear", "factor": 2.0}, "max_position_embeddings": 65536}),
    ("speculative-config", {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4}),
    ("speculative-config", {"model": "x/y-awq", "num_speculative_tokens": 3, "quantization": "awq_marlin"}),
    ("compilation-config", {"cudagraph_mode": "full_and_piecewise", "pass_config": {"enable_noop": True}}),
    ("compilation-config", 3),
    ("kv-transfer-config", {"kv_connector": "NixlConnector", "kv_role": "kv_both"}),
    ("override-pooler-config", {"pooling_type": "MEAN", "normalize": True}),
])  # fmt: skip
def test_keys_and_values_of_the_release_pass_and_reach_vllm(
        write_inventory: Callable[..., Path], flag: str, good: Any) -> None:
    inv = load_inventory(write_inventory(eyes({flag: good})), group_defaults())
    argv = vllm_configs.command(inv, "eyes", inv.hosts["eyes"].serves[0], "0.11.0")
    assert argv[argv.index(f"--{flag}") + 1] == vllm_flags.argument(good)


def test_a_build_that_reads_more_keys_declares_them(write_inventory: Callable[..., Path]) -> None:
    flags = {"compilation-config": {"cudagraph_mode": "FULL", "fork_fast_path": True}}
    assert "has no key 'fork_fast_path'" in one(problems(write_inventory, eyes(flags)), "compilation-config")
    load_inventory(write_inventory(eyes(flags, {"vllm_extra_choices": {"compilation-config": ["fork_fast_path"]}})),
                   group_defaults())
    lines = problems(write_inventory, eyes({}, {"vllm_extra_choices": {"limit-mm-per-prompt": ["image"]}}))
    assert any("vllm_extra_choices.limit-mm-per-prompt" in line and "nothing to extend" in line for line in lines)
