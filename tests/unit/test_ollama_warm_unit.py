"""hearth-ollama-warm.service: the unit that loads a host's warm models (keep_alive negative)
at every start of Ollama, rendered from the example and lab2 inventories."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import ollama
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory

from .test_configs_vllm import directive, systemd_split

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example() -> Inventory:
    return load_inventory(REPO / "inventory" / "example.yml", group_defaults())


@pytest.fixture(scope="module")
def lab2() -> Inventory:
    return load_inventory(REPO / "inventory" / "lab2.yml", group_defaults())


def warm_text(inv: Inventory, name: str) -> str:
    (unit,) = [f for f in ollama.host_files(inv, name) if f.dest == ollama.WARM_UNIT]
    return unit.render()


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_a_host_with_a_warm_model_gets_the_unit_bound_to_ollama(example: Inventory) -> None:
    text = warm_text(example, "gpu-1")
    assert directive(text, "Type") == ["oneshot"] and not directive(text, "RemainAfterExit")
    assert directive(text, "BindsTo") == ["ollama.service"] and directive(text, "After") == ["ollama.service"]
    assert directive(text, "WantedBy") == ["ollama.service"]  # every start job of Ollama pulls it in
    assert directive(text, "SyslogIdentifier") == ["hearth-ollama-warm"]


def test_it_waits_for_the_api_on_the_listen_address_then_loads_each_warm_model_once(example: Inventory) -> None:
    text = warm_text(example, "gpu-1")
    (wait,) = directive(text, "ExecStartPre")
    argv = systemd_split(wait)
    assert argv[0] == ollama.CURL and argv[-1] == "http://10.77.0.41:11434/api/version"
    assert option(argv, "--retry-max-time") == str(ollama.WARM_WAIT_S) and "--retry-all-errors" in argv
    loads = directive(text, "ExecStart")
    assert len(loads) == 1  # qwen3.5:9b only: deepseek-coder:6.7b keeps 5m, loaded on demand
    assert loads[0].startswith("-/usr/bin/curl ")  # a model that fails is logged, the next one still loaded
    argv = systemd_split(loads[0][1:])
    assert argv[-1] == "http://10.77.0.41:11434/api/generate"
    assert json.loads(option(argv, "--data")) == {"model": "qwen3.5:9b", "keep_alive": -1}  # a load, no prompt
    assert option(argv, "--write-out") == "load qwen3.5:9b (keep_alive -1): HTTP %{http_code} in %{time_total}s\\n"
    assert int(directive(text, "TimeoutStartSec")[0]) > ollama.WARM_WAIT_S + ollama.WARM_LOAD_S


def test_the_unit_is_hardened(example: Inventory) -> None:
    text = warm_text(example, "gpu-1")
    for key, value in {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
                       "CapabilityBoundingSet": "", "RestrictAddressFamilies": "AF_INET AF_INET6",
                       "IPAddressDeny": "any", "IPAddressAllow": "10.77.0.41"}.items():
        assert directive(text, key) == [value], key


def test_hosts_without_a_warm_model_get_no_unit(example: Inventory, lab2: Inventory) -> None:
    assert ollama.warm_unit(example, "windows-gpu") is None
    with_unit = {name for inv in (example, lab2) for name in inv.hosts if ollama.ollama_serves(inv, name)
                 and inv.hosts[name].os == "linux"
                 and any(f.dest == ollama.WARM_UNIT for f in ollama.host_files(inv, name))}
    assert with_unit == {"gpu-1", "den-mini"}  # den-rtx (keep_alive 0), den-pi (10m) have none


def test_dropping_keep_alive_drops_the_unit(write_inventory: Callable[..., Path]) -> None:
    def on_demand(data: dict[str, Any]) -> None:
        data["hosts"]["gpu-1"]["serves"][0]["keep_alive"] = "24h"

    inv = load_inventory(write_inventory(on_demand), group_defaults())
    assert ollama.warm_serves(inv, "gpu-1") == []
    assert [f.dest for f in ollama.host_files(inv, "gpu-1")] == [ollama.UNIT]


def test_two_warm_models_two_loads_and_a_longer_timeout(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "inventory" / "lab2.yml").read_text())
    for serve in data["hosts"]["den-mini"]["serves"]:
        serve["keep_alive"] = "-1"
    (tmp_path / "lab2.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    inv = load_inventory(tmp_path / "lab2.yml", group_defaults())
    text = warm_text(inv, "den-mini")
    models = [json.loads(option(systemd_split(line[1:]), "--data")) for line in directive(text, "ExecStart")]
    assert models == [{"model": "qwen2.5:7b", "keep_alive": -1}, {"model": "qwen2.5-coder:1.5b", "keep_alive": -1}]
    assert int(directive(text, "TimeoutStartSec")[0]) >= ollama.WARM_WAIT_S + 2 * ollama.WARM_LOAD_S


@pytest.mark.parametrize("model", ["hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", "we ird\"100%$HOME\\x"])
def test_a_model_name_reaches_curl_intact(lab2: Inventory, model: str) -> None:
    serve = ollama.warm_serves(lab2, "den-mini")[0].model_copy(update={"model": model})
    line = ollama.exec_line(ollama.warm_load_command("10.78.0.4:11434", serve))
    argv = systemd_split(line)
    assert json.loads(option(argv, "--data")) == {"model": model, "keep_alive": -1}
    assert option(argv, "--write-out").startswith(f"load {model} (keep_alive -1): ")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_reads_the_unit_without_complaint(example: Inventory, tmp_path: Path) -> None:
    """systemd's own parser: no unknown directive, no bad quoting in the command lines."""
    path = tmp_path / "hearth-ollama-warm.service"
    path.write_text(warm_text(example, "gpu-1"))
    (tmp_path / "ollama.service").write_text("[Service]\nExecStart=/bin/true\n")
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True,
                         cwd=tmp_path, env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"})
    complaints = [line for line in out.stderr.splitlines() if "hearth-ollama-warm" in line]
    assert out.returncode == 0 and not complaints, out.stderr
