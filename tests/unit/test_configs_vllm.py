"""vLLM units rendered from the example and lab inventories: command line, hardening, order."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import vllm
from hearth.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


def systemd_split(line: str) -> list[str]:
    """Split an ExecStart= value as systemd does (quotes, C escapes, %% and $$)."""
    words, word, quote, i, started = [], "", None, 0, False
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                word += line[i + 1]
                i += 2
                continue
            if ch == quote:
                quote = None
            else:
                word += ch
        elif ch in "\"'":
            quote, started = ch, True
        elif ch.isspace():
            if word or started:
                words.append(word)
            word, started = "", False
        else:
            word += ch
        i += 1
    if word or started:
        words.append(word)
    return [w.replace("%%", "%").replace("$$", "$") for w in words]


def directive(text: str, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", text, re.M)


@pytest.fixture(scope="module")
def example() -> Any:
    return load_inventory(REPO / "inventory" / "example.yml")


def unit_text(inv: Any, host: str, index: int = 0) -> str:
    return vllm.host_files(inv, host)[1 + index].render()


def test_command_line_is_exactly_the_serve_plus_its_flags(example: Any) -> None:
    argv = systemd_split(directive(unit_text(example, "spark"), "ExecStart")[0])
    assert argv == [
        "/opt/vllm/venv/bin/vllm", "serve", "Qwen/Qwen3.6-35B-A3B-FP8",
        "--served-model-name", "qwen3.6-35b-a3b-fp8",
        "--host", "10.77.0.70", "--port", "8000", "--max-model-len", "131072",
        "--gpu-memory-utilization", "0.7", "--kv-cache-dtype", "fp8",
        "--dtype", "auto", "--enable-chunked-prefill", "--enable-prefix-caching",
        "--rope-scaling", '{"type":"yarn","factor":4.0,"original_max_position_embeddings":32768}',
    ]  # fmt: skip


def test_json_flags_reach_vllm_intact(example: Any) -> None:
    text = unit_text(example, "hands")
    argv = systemd_split(directive(text, "ExecStart")[0])
    assert argv[argv.index("--speculative-config") + 1] == '{"method":"none"}'
    # and the same with a shell: the quoted form is not a shell accident
    assert '"{\\"method\\":\\"none\\"}"' in text


@pytest.mark.parametrize("arg", ['{"a": "b c"}', "100%", "$HOME", "back\\slash", "it's", "", "a\tb"])
def test_systemd_quote_round_trips(arg: str) -> None:
    assert systemd_split(f"prog {vllm.systemd_quote(arg)} end") == ["prog", arg, "end"]


def test_binds_the_overlay_never_the_lan(example: Any) -> None:
    for host in ("eyes", "hands", "spark"):
        argv = systemd_split(directive(unit_text(example, host), "ExecStart")[0])
        address = argv[argv.index("--host") + 1]
        assert address == str(example.hosts[host].overlay_ip)
        assert address != example.hosts[host].address


def test_hardening_that_a_gpu_service_allows(example: Any) -> None:
    text = unit_text(example, "eyes")
    assert directive(text, "User") == ["vllm"] and directive(text, "NoNewPrivileges") == ["true"]
    assert directive(text, "ProtectSystem") == ["strict"] and directive(text, "ProtectHome") == ["true"]
    assert directive(text, "PrivateTmp") == ["true"] and directive(text, "PrivateDevices") == ["false"]
    assert "/var/lib/vllm/huggingface" in directive(text, "ReadWritePaths")[0].split()
    assert "AF_UNIX" in directive(text, "RestrictAddressFamilies")[0].split()
    assert not directive(text, "IPAddressDeny") and not directive(text, "ProtectClock")
    assert not directive(text, "MemoryDenyWriteExecute")
    assert directive(text, "DevicePolicy") == ["closed"]
    assert {"char-nvidiactl rw", "char-nvidia-uvm rw", "char-nvidia-frontend rw"} <= set(directive(text, "DeviceAllow"))
    assert directive(text, "Restart") == ["on-failure"]
    assert directive(text, "StartLimitBurst") and directive(text, "RestartSec")
    assert int(directive(text, "TimeoutStartSec")[0]) > 900  # big models load for minutes
    assert 'VLLM_LOGGING_LEVEL=WARNING' in directive(text, "Environment")
    assert "CUDA_VISIBLE_DEVICES=0" in directive(text, "Environment")


def test_ordered_after_overlay_and_nvidia_without_requiring_it(example: Any) -> None:
    text = unit_text(example, "eyes")
    after = directive(text, "After")[0].split()
    assert "wg-quick@wg0.service" in after and "nvidia-persistenced.service" in after
    assert "nvidia-persistenced.service" in directive(text, "Wants")[0].split()
    assert not directive(text, "Requires")


def test_ready_wait_before_the_unit_counts_as_started(example: Any) -> None:
    text = unit_text(example, "eyes")
    post = systemd_split(directive(text, "ExecStartPost")[0])
    assert post == ["/usr/bin/python3", vllm.READY, "http://10.77.0.40:8000", "qwen2.5-vl-7b-router-awq", "900"]


def two_models(data: dict[str, Any]) -> None:
    """A second vLLM model on the vision box's second card, started first."""
    eyes = data["hosts"]["eyes"]
    eyes["gpus"].append({"model": "RTX 4090", "vram_gb": 24, "dedicated": True})
    eyes["serves"].append({
        "name": "qwen2.5-7b-fast", "engine": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
        "arch": "qwen2.5-7b", "quant": "awq", "context": 8192, "gpu_memory_utilization": 0.5,
        "gpu": 1, "port": 8001, "start_order": 0, "ready_timeout_s": 120, "routes": ["spare"],
        "flags": {"max-num-seqs": 8, "limit-mm-per-prompt": {"image": 0}},
    })  # fmt: skip
    eyes["serves"][0]["start_order"] = 1


def test_start_order_chains_units_after_each_other(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(two_models))
    files = vllm.host_files(inv, "eyes")
    first, second = files[1], files[2]
    assert first.dest.endswith("vllm-qwen2.5-7b-fast.service")
    assert second.dest.endswith("vllm-qwen2.5-vl-7b-router-awq.service")
    first_text, second_text = first.render(), second.render()
    assert "vllm-qwen2.5-7b-fast.service" in directive(second_text, "After")[0].split()
    # Wants= too: starting the second alone pulls the first in, ordered before it
    assert "vllm-qwen2.5-7b-fast.service" in directive(second_text, "Wants")[0].split()
    assert not directive(second_text, "Requires") and not directive(second_text, "BindsTo")
    assert not any("vllm-" in unit for unit in directive(first_text, "After")[0].split() +
                   directive(first_text, "Wants")[0].split())
    # and it waits (bounded, not fatal) for the first model itself before loading
    pre = directive(second_text, "ExecStartPre")
    assert len(pre) == 1 and pre[0].startswith("-")
    assert systemd_split(pre[0][1:]) == ["/usr/bin/python3", vllm.READY, "http://10.77.0.40:8001",
                                         "qwen2.5-7b-fast", "120", "vllm-qwen2.5-7b-fast.service"]
    assert not directive(first_text, "ExecStartPre")
    # systemd's start timeout covers both waits
    assert directive(second_text, "TimeoutStartSec") == [str(120 + 900 + 60)]
    assert "CUDA_VISIBLE_DEVICES=1" in directive(first_text, "Environment")
    assert directive(first_text, "ExecStartPost")[0].endswith(" 120")
    argv = systemd_split(directive(first_text, "ExecStart")[0])
    assert argv[-4:] == ["--max-num-seqs", "8", "--limit-mm-per-prompt", '{"image":0}']


def test_hf_token_is_a_file_reference_never_in_the_unit(write_inventory: Callable[..., Path]) -> None:
    def token(data: dict[str, Any]) -> None:
        data["settings"] = {"vllm_hf_token": "env:HF_TOKEN"}

    inv = load_inventory(write_inventory(token))
    text = unit_text(inv, "eyes")
    assert f"HF_TOKEN_PATH={vllm.HF_TOKEN}" in directive(text, "Environment")
    assert "env:HF_TOKEN" not in text


def test_no_units_without_vllm_serves(example: Any) -> None:
    assert vllm.host_files(example, "k3master") == []
    assert vllm.host_files(example, "windows-gpu") == []


def test_ready_script_is_python_that_compiles(example: Any) -> None:
    script = vllm.host_files(example, "eyes")[0]
    assert script.dest == vllm.READY and script.mode == "0755"
    compile(script.render(), script.dest, "exec")


def test_shell_quoting_would_differ_so_systemd_rules_are_used(example: Any) -> None:
    # shlex (a shell) and systemd agree on this line: both yield the JSON intact
    line = directive(unit_text(example, "hands"), "ExecStart")[0]
    assert shlex.split(line) == systemd_split(line)


def test_unit_exposure_as_systemd_scores_it(example: Any, tmp_path: Path) -> None:
    """`systemd-analyze security --offline` on a rendered vLLM unit: what a CUDA service allows
    (no syscall filter, no IP allow list, devices open to the NVIDIA nodes) scores 4.3 here."""
    import shutil
    import subprocess

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    unit = vllm.host_files(example, "eyes")[1]
    path = tmp_path / Path(unit.dest).name
    path.write_text(unit.render())
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 4.5, proc.stdout


def test_ready_script_gives_up_when_the_unit_it_waits_for_is_gone(example: Any, tmp_path: Path) -> None:
    """Nothing answers on the port and `systemctl is-active` says failed: no wait to the deadline."""
    import subprocess
    import sys
    import time

    script = tmp_path / "ready.py"
    script.write_text(vllm.host_files(example, "eyes")[0].render())
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text("#!/bin/sh\necho failed\nexit 3\n")
    (fake / "systemctl").chmod(0o755)
    start = time.monotonic()
    run = subprocess.run([sys.executable, str(script), "http://127.0.0.1:9", "m", "60", "vllm-m.service"],
                         capture_output=True, text=True, timeout=30, env={"PATH": f"{fake}:/usr/bin:/bin"})
    assert run.returncode == 1 and "vllm-m.service is failed" in run.stderr
    assert time.monotonic() - start < 15
    run = subprocess.run([sys.executable, str(script), "http://127.0.0.1:9", "m", "0"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1 and "not ready" in run.stderr
