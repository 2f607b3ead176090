"""An Ollama serve's kv_cache_dtype is one OLLAMA_KV_CACHE_TYPE takes, one value per server.

Ollama v0.14.0 takes f16, q8_0 and q4_0 (fs/ggml/ggml.go SupportsKVCacheType, docs/faq.md);
anything else is passed on to no runner and the model quietly runs f16 (planned smaller than
it is), so validation refuses it before any host is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import ollama
from hearth.deploy_data import group_defaults
from hearth.inventory import InventoryError, load_inventory

REPO = Path(__file__).resolve().parents[2]
# docs/faq.md of ollama/ollama: "The currently available K/V cache quantization types are: f16, q8_0, q4_0"
OLLAMA_TYPES = {"f16", "q8_0", "q4_0"}


def gpu1(*kvs: str) -> Callable[[dict[str, Any]], None]:
    """The example's seed-001 box: one Ollama server, two models; kv_cache_dtype per serve."""
    def change(data: dict[str, Any]) -> None:
        for serve, kv in zip(data["hosts"]["gpu-1"]["serves"], kvs, strict=False):
            serve["kv_cache_dtype"] = kv

    return change


def problems(write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None]) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(change), group_defaults())
    return caught.value.lines


@pytest.mark.parametrize("kv", ["fp8", "bf16", "fp8_e4m3", "turboquant_k8v4"])
def test_a_kv_type_ollama_does_not_take_is_refused_naming_the_allowed(
        write_inventory: Callable[..., Path], kv: str) -> None:
    lines = problems(write_inventory, gpu1(kv))
    found = [line for line in lines if "hosts.gpu-1.serves[0].kv_cache_dtype: " in line]
    assert len(found) == 1, lines
    path, _, rest = found[0].partition(": ")
    assert path.rsplit(":", 1)[1].isdigit() and path.rsplit(":", 1)[0].endswith(".yml"), found
    assert f"{kv} is not a KV-cache type of Ollama" in rest and "f16, q8_0 or q4_0" in rest
    assert "fs/ggml/ggml.go" in rest and "; serve qwen3.5:9b" in rest


@pytest.mark.parametrize(("kv", "written"), [("auto", None), ("fp16", "f16"), ("f16", "f16"),
                                             ("q8_0", "q8_0"), ("q4_0", "q4_0")])
def test_each_kv_type_ollama_takes_is_accepted_and_written_as_ollama_spells_it(
        write_inventory: Callable[..., Path], kv: str, written: str | None) -> None:
    inv = load_inventory(write_inventory(gpu1(kv, kv)), group_defaults())
    env = ollama.environment(inv, "gpu-1")
    assert env.get("OLLAMA_KV_CACHE_TYPE") == written
    assert written is None or (written in OLLAMA_TYPES and env["OLLAMA_FLASH_ATTENTION"] == "1")


def test_the_mapping_writes_only_what_ollama_takes() -> None:
    assert set(ollama.OLLAMA_KV_CACHE_TYPES.values()) == OLLAMA_TYPES


def test_one_server_one_kv_type(write_inventory: Callable[..., Path]) -> None:
    """Two models of one Ollama server with different KV types: one would silently run the other's."""
    lines = problems(write_inventory, gpu1("q8_0", "q4_0"))
    found = [line for line in lines if "hosts.gpu-1.serves[1].kv_cache_dtype: " in line]
    assert len(found) == 1 and "serves[0] (qwen3.5:9b) has q8_0" in found[0], lines
    load_inventory(write_inventory(gpu1("q8_0", "auto")), group_defaults())  # auto runs the server's
    load_inventory(write_inventory(gpu1("fp16", "f16")), group_defaults())  # one type, two spellings


@pytest.mark.parametrize("name", ["inventory/example.yml", "inventory/lab.yml", "inventory/lab2.yml",
                                  "tests/lab/kinds.yml", "tests/lab/kinds-arm64.yml"])
def test_the_shipped_inventories_stay_valid(name: str) -> None:
    load_inventory(REPO / name, group_defaults())
