"""Ollama and gateway files rendered from the example and lab inventories."""

from __future__ import annotations

import hashlib
import re
import runpy
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from hearth.configs import gateway, ollama
from hearth.gateway.config import parse_config
from hearth.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example():
    return load_inventory(REPO / "inventory" / "example.yml")


def test_ollama_unit_binds_the_overlay_and_carries_the_seed_settings() -> None:
    inv = load_inventory(REPO / "inventory" / "lab.yml")
    unit, _resume = ollama.host_files(inv, "lab-ollama")
    text = unit.render()
    assert unit.dest == "/etc/systemd/system/ollama.service"
    assert 'Environment="OLLAMA_HOST=10.77.0.12:11434"' in text  # overlay only, never 0.0.0.0
    assert 'Environment="OLLAMA_KEEP_ALIVE=0"' in text
    assert 'Environment="OLLAMA_MAX_LOADED_MODELS=1"' in text
    assert 'Environment="OLLAMA_KV_CACHE_TYPE=q8_0"' in text and 'OLLAMA_FLASH_ATTENTION=1' in text
    assert "After=network-online.target wg-quick@wg0.service" in text
    assert ollama.host_files(inv, "lab-vllm") == []


def test_seed_001_box_per_model_keep_alive_and_one_server(example) -> None:
    """Per-model keep_alive goes to the gateway; the unit's default is the shortest."""
    from hearth.gateway.from_inventory import gateway_config_from_inventory

    env = ollama.environment(example, "gpu-1")
    assert env["OLLAMA_KEEP_ALIVE"] == "5m"  # shortest of "-1" and "5m"
    assert env["OLLAMA_MAX_LOADED_MODELS"] == "1"
    assert [s.model for s in ollama.warm_serves(example, "gpu-1")] == ["qwen3.5:9b"]
    assert ollama.environment(example, "windows-gpu")["OLLAMA_KEEP_ALIVE"] == "0"
    cfg = gateway_config_from_inventory(example, resolve=lambda ref: ref)
    warm, coder = cfg.upstreams["gpu-1-0"], cfg.upstreams["gpu-1-1"]
    assert (warm.keep_alive, coder.keep_alive) == ("-1", "5m")
    assert warm.server == coder.server == "gpu-1:ollama"
    assert warm.max_loaded_models == coder.max_loaded_models == 1
    assert cfg.upstreams["windows-gpu"].keep_alive == "0"


def test_gateway_files_only_on_the_gateway_host(example) -> None:
    assert gateway.host_files(example, "eyes") == []
    policy, unit = gateway.host_files(example, "k3master")
    assert (policy.dest, policy.mode, policy.group) == ("/etc/hearth/gateway/policy.yaml", "0640", "hearth-gateway")
    assert unit.dest == "/etc/systemd/system/hearth-gateway.service"


def test_gateway_policy_listens_on_loopback_and_overlay_and_holds_no_secret(
    example, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTH_KEY_CURSOR", "cursor-secret-key")
    policy, _ = gateway.host_files(example, "k3master", {"resolve": gateway.resolve_or_placeholder})
    text = policy.render()
    data = yaml.safe_load(text)
    parse_config(data)  # the rendered policy is valid for the gateway itself
    assert data["listen"] == ["127.0.0.1:4000", "10.77.0.1:4000"]
    assert data["upstreams"]["windows-gpu"]["sleep"]["mac"] == "d8:bb:c1:30:60:12"
    assert data["upstreams"]["windows-gpu"]["base_url"] == "http://10.77.0.30:11434"
    assert data["routes"]["reasoning"]["terminal"] is True
    assert data["clients"]["cursor"]["key_sha256"] == hashlib.sha256(b"cursor-secret-key").hexdigest()
    assert "cursor-secret-key" not in text
    assert data["admin_token_file"] == "/etc/hearth/gateway/secrets/admin-token"
    assert data["clouds"]["gemini"]["api_key_file"].startswith("/etc/hearth/gateway/secrets/")


def test_gateway_unit_is_hardened_and_reloads_by_signal(example) -> None:
    _, unit = gateway.host_files(example, "k3master")
    text = unit.render()
    expected = (
        "User=hearth-gateway", "NoNewPrivileges=true", "ProtectSystem=strict", "CapabilityBoundingSet=",
        "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=hearth-gateway", "LogsDirectory=hearth/gateway",
        "SystemCallFilter=@system-service", "ProtectProc=invisible", "ProcSubset=pid", "PrivateUsers=true",
        "RemoveIPC=true",
    )
    for line in expected:
        assert line in text.splitlines(), line
    # the directories systemd creates are the ones the policy and the role use
    assert f"/var/lib/{unit.context['state_directory']}" == gateway.STATE
    assert f"/var/log/{unit.context['logs_directory']}" == gateway.LOGS


MAX_EXPOSURE = 2.0


def test_gateway_unit_exposure_is_at_most_2(example, tmp_path: Path) -> None:
    """`systemd-analyze security --offline` on the rendered unit (systemd >= 250, package `systemd`)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; scripts/bootstrap installs it)")
    _, unit = gateway.host_files(example, "k3master")
    path = tmp_path / "hearth-gateway.service"
    path.write_text(unit.render())
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for hearth-gateway\.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


def test_gateway_dependency_pins_match_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {line.split("==")[0].lower(): line for line in project}
    for requirement in runpy.run_path(str(REPO / "group_data" / "gateway.py"))["gateway_python_packages"]:
        assert pins[requirement.split("==")[0].lower()] == requirement


def test_gateway_listen_addresses_are_in_the_unit_so_a_change_restarts_it(example) -> None:
    _, unit = gateway.host_files(example, "k3master")
    line = next(line for line in unit.render().splitlines() if line.startswith("ExecStart="))
    assert line.endswith("--listen 127.0.0.1:4000 --listen 10.77.0.1:4000")
    moved = example.model_copy(update={"gateway": example.gateway.model_copy(update={"port": 4100})})
    _, unit_moved = gateway.host_files(moved, "k3master")
    assert unit_moved.render() != unit.render()
