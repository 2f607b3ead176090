"""Validation knows vLLM: flags of the pinned release, value types, ranges, start order."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth import vllm_flags
from hearth.deploy_data import group_defaults
from hearth.inventory import InventoryError, load_inventory

REPO = Path(__file__).resolve().parents[2]


def problems(write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None]) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(change), group_defaults())
    return caught.value.lines


def eyes_flags(**flags: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["eyes"]["serves"][0]["flags"].update(flags)

    return change


def test_the_recorded_list_is_the_pinned_release() -> None:
    version = group_defaults()["vllm_version"]
    recorded = vllm_flags.load(version)
    assert recorded["vllm_version"] == version
    assert len(recorded["source"]["sha256"]) == 64
    flags = recorded["flags"]
    for name in ("max-model-len", "gpu-memory-utilization", "kv-cache-dtype", "enable-prefix-caching",
                 "enable-chunked-prefill", "rope-scaling", "speculative-config", "tensor-parallel-size",
                 "quantization", "served-model-name", "host", "port", "enforce-eager", "dtype"):
        assert name in flags, name
    assert flags["enable-prefix-caching"]["kind"] == "bool"
    assert flags["rope-scaling"]["kind"] == "json" and flags["tensor-parallel-size"]["kind"] == "int"
    assert "awq_marlin" in recorded["quantization_methods"]


def test_a_misspelt_flag_is_refused_with_file_line_and_key(write_inventory: Callable[..., Path]) -> None:
    lines = problems(write_inventory, eyes_flags(**{"enable-prefix-cache": True}))
    assert len(lines) == 1
    assert ":" in lines[0].split(" ")[0] and lines[0].split(":")[1].isdigit()
    assert "hosts.eyes.serves[0].flags.enable-prefix-cache: vLLM 0.11.0 has no --enable-prefix-cache" in lines[0]
    assert "did you mean enable-prefix-caching" in lines[0]


@pytest.mark.parametrize(("flags", "message"), [
    ({"tensor-parallel-size": "two"}, "--tensor-parallel-size takes a int"),
    ({"enable-chunked-prefill": "yes"}, "is a switch: write true or false"),
    ({"rope-scaling": "{type: yarn"}, "--rope-scaling takes a JSON document"),
    ({"dtype": "fp4"}, "--dtype must be one of auto, bfloat16"),
    ({"quantization": "awq_turbo"}, "no quantization method 'awq_turbo'"),
    ({"headless": False}, "takes no value"),
    ({"max-model-len": 4096}, "set by hearth from the serve's context"),
    ({"api-key": "sk-123"}, "would put a secret on the command line"),
    ({"no-enable-prefix-caching": True}, "write enable-prefix-caching: false"),
    ({"--enforce-eager": True}, "without leading dashes"),
    ({"tensor-parallel-size": 2}, "2 GPUs from gpu 0 on, but this host has 1"),
])  # fmt: skip
def test_bad_values_are_refused(write_inventory: Callable[..., Path], flags: dict[str, Any], message: str) -> None:
    lines = problems(write_inventory, eyes_flags(**flags))
    assert any(message in line for line in lines), lines


def test_good_values_of_every_kind_pass(write_inventory: Callable[..., Path]) -> None:
    change = eyes_flags(**{"enforce-eager": False, "max-num-seqs": 8, "swap-space": 4,
                           "rope-scaling": {"type": "yarn", "factor": 2, "original_max_position_embeddings": 4096},
                           "kv-cache-memory-bytes": 1000})
    load_inventory(write_inventory(change), group_defaults())


@pytest.mark.parametrize("value", [0, 1.2, -0.1])
def test_gpu_memory_utilization_outside_zero_one_is_refused(write_inventory: Callable[..., Path], value: float) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["eyes"]["serves"][0]["gpu_memory_utilization"] = value

    lines = problems(write_inventory, change)
    assert any("hosts.eyes.serves[0].gpu_memory_utilization" in line for line in lines), lines


def test_a_share_too_small_for_the_context_is_refused_by_the_planner(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["eyes"]["serves"][0]["gpu_memory_utilization"] = 0.45

    lines = problems(write_inventory, change)
    assert any("hosts.eyes.serves[0]: qwen2.5-vl-7b-router-awq does not fit" in line for line in lines), lines


def test_unrecorded_version_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["settings"] = {"vllm_version": "0.0.1"}

    lines = problems(write_inventory, change)
    assert any("settings.vllm_version: no recorded `vllm serve` argument list for vLLM 0.0.1" in ln for ln in lines)


def test_logging_below_warning_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["settings"] = {"vllm_logging_level": "INFO"}

    assert any("prompts" in line for line in problems(write_inventory, change))


def test_start_order_and_ready_timeout_only_for_vllm_and_unique(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["windows-gpu"]["serves"][0]["start_order"] = 1
        eyes = data["hosts"]["eyes"]
        eyes["gpus"].append({"model": "RTX 4090", "vram_gb": 24})
        eyes["serves"][0]["start_order"] = 0
        eyes["serves"].append({**eyes["serves"][0], "name": "second", "port": 8001, "gpu": 1, "routes": []})

    lines = problems(write_inventory, change)
    assert any("windows-gpu.serves[0].start_order: start_order orders vLLM units" in line for line in lines)
    assert any("hosts.eyes.serves[1].start_order: 0 is also" in line for line in lines)


def test_a_dedicated_card_holds_one_model(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        eyes = data["hosts"]["eyes"]
        eyes["gpus"] = [{"model": "RTX 6000", "vram_gb": 48, "dedicated": True}]
        eyes["serves"][0]["gpu_memory_utilization"] = 0.4
        eyes["serves"].append({**eyes["serves"][0], "name": "second", "port": 8001, "routes": []})

    lines = problems(write_inventory, change)
    assert any("hosts.eyes.gpus[0]: RTX 6000 is dedicated (one model per card)" in line for line in lines), lines


def test_generator_output_matches_its_documented_shape() -> None:
    data = json.loads((REPO / "hearth" / "vllm_flags" / "vllm-0.11.0.json").read_text())
    assert data["aliases"]["-tp"] == "tensor-parallel-size"
    kinds = {spec["kind"] for spec in data["flags"].values()}
    assert kinds <= {"bool", "flag", "int", "float", "str", "json", "json_or_str"}
