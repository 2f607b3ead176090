"""Validation refuses a `vllm serve` value outside the pinned release's fixed set.

The sets are vLLM v0.11.0's own (the recorded parser's choices, and
``hearth/vllm_flags/values.py`` for flags the parser takes as free text); the literal
lists below were read in that release's source, file by file, to cross-check both.
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
# vLLM v0.11.0, vllm/config/cache.py: CacheDType
CACHE_DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc")
# vllm/config/model.py: ModelDType
MODEL_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
# vllm/model_executor/layers/quantization/__init__.py: QuantizationMethods
QUANTIZATION = ("awq", "deepspeedfp", "tpu_int8", "fp8", "ptpc_fp8", "fbgemm_fp8", "modelopt", "modelopt_fp4",
                "bitblas", "gguf", "gptq_marlin_24", "gptq_marlin", "gptq_bitblas", "awq_marlin", "gptq",
                "compressed-tensors", "bitsandbytes", "hqq", "experts_int8", "ipex", "quark", "moe_wna16",
                "torchao", "auto-round", "rtn", "inc", "mxfp4", "petit_nvfp4")


def problems(write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None]) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(change), group_defaults())
    return caught.value.lines


def eyes(**keys: Any) -> Callable[[dict[str, Any]], None]:
    """Change the example's vision box (vLLM, no extra choices): serve keys, flags under ``flags``."""
    def change(data: dict[str, Any]) -> None:
        serve = data["hosts"]["eyes"]["serves"][0]
        flags = keys.pop("flags", {})
        serve.update(keys)
        serve["flags"].update(flags)

    return change


def one(lines: list[str], path: str) -> str:
    found = [line for line in lines if f"{path}: " in line]
    assert len(found) == 1, lines
    return found[0]


def test_the_recorded_choices_are_the_release_source() -> None:
    flags = RECORDED["flags"]
    assert sorted(flags["kv-cache-dtype"]["choices"]) == sorted(CACHE_DTYPES)
    assert sorted(flags["dtype"]["choices"]) == sorted(MODEL_DTYPES)
    assert sorted(RECORDED["quantization_methods"]) == sorted(QUANTIZATION)
    for name, spec in values.VALUES["0.11.0"].items():  # free text to argparse, a fixed set to the release
        flag = name.split(".")[0]
        assert flag in flags, name
        assert "choices" not in flags[flag] and spec.choices and spec.source.startswith("vllm/"), name
    for name in values.WITHOUT_EFFECT["0.11.0"]:
        assert name in flags


@pytest.mark.parametrize(("flag", "bad", "good"), [
    ("dtype", "fp4", "bfloat16"),
    ("quantization", "awq_turbo", "awq_marlin"),
    ("block-size", 24, 16),
    ("tokenizer-mode", "fast", "mistral"),
    ("reasoning-parser", "qwen2", "qwen3"),
    ("config-format", "gguf", "mistral"),
    ("load-format", "safetensor", "safetensors"),
    ("model-impl", "hf", "transformers"),
    ("data-parallel-backend", "mpi", "ray"),
    ("distributed-executor-backend", "multiprocessing", "external_launcher"),
    ("safetensors-load-strategy", "eagre", "eager"),
    ("tool-call-parser", "qwen3", "hermes"),
    ("speculative-config", {"method": "none", "num_speculative_tokens": 2}, {"method": "ngram"}),
    ("structured-outputs-config", '{"backend": "lmfe"}', '{"backend": "lm-format-enforcer"}'),
])  # fmt: skip
def test_a_value_outside_the_release_set_is_refused_naming_file_host_serve_flag_and_choices(
        write_inventory: Callable[..., Path], flag: str, bad: Any, good: Any) -> None:
    line = one(problems(write_inventory, eyes(flags={flag: bad})), f"hosts.eyes.serves[0].flags.{flag}")
    path, _, rest = line.partition(": ")
    assert path.endswith(".yml:" + path.rsplit(":", 1)[1]) and path.rsplit(":", 1)[1].isdigit(), line
    nested = {"speculative-config": "method", "structured-outputs-config": "backend"}
    allowed = vllm_flags.allowed_values(RECORDED, f"{flag}.{nested[flag]}" if flag in nested else flag)
    assert allowed is not None
    assert f"must be one of {', '.join(allowed.choices)}" in rest
    assert "; serve qwen2.5-vl-7b-router-awq" in rest and "vLLM 0.11.0" in rest
    assert allowed.source.split(":")[0] in rest or "argument parser" in rest
    load_inventory(write_inventory(eyes(flags={flag: good})), group_defaults())


@pytest.mark.parametrize("kv", ["q8_0", "q4_0", "turboquant_k8v4"])
def test_kv_cache_dtype_hearth_writes_is_checked(write_inventory: Callable[..., Path], kv: str) -> None:
    line = one(problems(write_inventory, eyes(kv_cache_dtype=kv)), "hosts.eyes.serves[0].kv_cache_dtype")
    assert f"{kv} is not a KV-cache dtype of vLLM 0.11.0" in line
    assert f"--kv-cache-dtype must be one of {', '.join(RECORDED['flags']['kv-cache-dtype']['choices'])}" in line
    assert "vllm/config/cache.py: CacheDType" in line and "; serve qwen2.5-vl-7b-router-awq" in line


@pytest.mark.parametrize("kv", ["auto", "fp16", "bf16", "fp8", "fp8_e4m3", "fp8_e5m2"])
def test_every_vllm_kv_cache_dtype_is_accepted_and_written(write_inventory: Callable[..., Path], kv: str) -> None:
    inv = load_inventory(write_inventory(eyes(kv_cache_dtype=kv, gpu_memory_utilization=0.9)), group_defaults())
    argv = vllm_configs.command(inv, "eyes", inv.hosts["eyes"].serves[0], "0.11.0")
    written = argv[argv.index("--kv-cache-dtype") + 1] if "--kv-cache-dtype" in argv else "auto"
    assert written in RECORDED["flags"]["kv-cache-dtype"]["choices"]
    assert written == {"bf16": "bfloat16", "fp16": "auto"}.get(kv, kv)


def test_a_list_value_is_checked_item_by_item(write_inventory: Callable[..., Path]) -> None:
    line = one(problems(write_inventory, eyes(flags={"collect-detailed-traces": ["model", "gpu"]})),
               "hosts.eyes.serves[0].flags.collect-detailed-traces")
    assert "(got 'gpu'" in line


def test_deprecated_flags_without_effect_are_refused(write_inventory: Callable[..., Path]) -> None:
    line = one(problems(write_inventory, eyes(flags={"guided-decoding-backend": "xgrammar"})),
               "hosts.eyes.serves[0].flags.guided-decoding-backend")
    assert "has no effect there" in line and "structured-outputs-config: {backend: ...}" in line


def test_a_tool_parser_plugin_brings_its_own_names(write_inventory: Callable[..., Path]) -> None:
    flags = {"enable-auto-tool-choice": True, "tool-parser-plugin": "/opt/my_parser.py", "tool-call-parser": "mine"}
    load_inventory(write_inventory(eyes(flags=flags)), group_defaults())


def test_extra_choices_of_a_build_are_per_host(write_inventory: Callable[..., Path]) -> None:
    """The example's hands box declares its TurboQuant build; the same values elsewhere are refused."""
    inv = load_inventory(write_inventory(), group_defaults())
    argv = vllm_configs.command(inv, "hands", inv.hosts["hands"].serves[0], "0.11.0")
    assert argv[argv.index("--kv-cache-dtype") + 1] == "turboquant_k8v4"

    def without(data: dict[str, Any]) -> None:
        del data["hosts"]["hands"]["settings"]["vllm_extra_choices"]

    lines = problems(write_inventory, without)
    assert any("hosts.hands.serves[0].kv_cache_dtype: turboquant_k8v4 is not" in line for line in lines), lines
    assert any("hosts.hands.serves[0].flags.speculative-config: --speculative-config method must be one of ngram"
               in line and "(got 'none'" in line for line in lines), lines
    lines = problems(write_inventory, eyes(kv_cache_dtype="turboquant_k8v4"))
    assert any("hosts.eyes.serves[0].kv_cache_dtype" in line for line in lines)


@pytest.mark.parametrize(("extra", "message"), [
    ({"max-num-seqs": ["9"]}, "has no fixed set of values for max-num-seqs"),
    ({"kv-cache-dtype": "turboquant_k8v4"}, "a list of values"),
    (["kv-cache-dtype"], "a mapping of flag -> list of values"),
])  # fmt: skip
def test_extra_choices_are_checked(write_inventory: Callable[..., Path], extra: Any, message: str) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["eyes"]["settings"] = {"vllm_extra_choices": extra}

    assert any("hosts.eyes.settings.vllm_extra_choices" in line and message in line
               for line in problems(write_inventory, change))


def test_an_executor_class_by_import_path_is_declared_per_host(write_inventory: Callable[..., Path]) -> None:
    """0.11.0 also takes an executor class's import path (vllm/v1/executor/abstract.py): a host
    that runs one declares it, the release's set alone refuses it and names the four backends."""
    qualname = "my_site.executors.PinnedExecutor"
    line = one(problems(write_inventory, eyes(flags={"distributed-executor-backend": qualname})),
               "hosts.eyes.serves[0].flags.distributed-executor-backend")
    assert "must be one of ray, mp, uni, external_launcher" in line and "vllm/config/parallel.py" in line

    def declared(data: dict[str, Any]) -> None:
        eyes(flags={"distributed-executor-backend": qualname})(data)
        data["hosts"]["eyes"]["settings"] = {"vllm_extra_choices": {"distributed-executor-backend": [qualname]}}

    inv = load_inventory(write_inventory(declared), group_defaults())
    argv = vllm_configs.command(inv, "eyes", inv.hosts["eyes"].serves[0], "0.11.0")
    assert argv[argv.index("--distributed-executor-backend") + 1] == qualname
