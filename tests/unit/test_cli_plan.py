"""`hearth plan` and `hearth render` as a person runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_plan_prints_hosts_vram_routes_and_sleepers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(REPO / "inventory" / "example.yml")]) == 0
    out = capsys.readouterr().out
    assert "k3master" in out and "k3s_servers, gateway" in out
    # the 3060 line: Ollama qwen2.5-coder:14b, 10.1 GiB resident of 11 usable
    (line,) = [line for line in out.splitlines() if line.startswith("windows-gpu/gpu0")]
    assert "qwen2.5-coder:14b" in line and line.split()[-1] == "10.1"
    assert "TERMINAL: 503, never downgrades" in out
    assert "chat > reasoning" in out  # the asymmetric eyes spill chain
    assert "d8:bb:c1:30:60:12" in out and "wol to 192.168.1.255" in out


def test_plan_accepts_the_pyinfra_inventory_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(REPO / "inventory" / "lab.py")]) == 0
    assert "lab-ollama" in capsys.readouterr().out


def test_plan_of_an_invalid_inventory_exits_non_zero_with_the_lines(
    write_inventory: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["reasoning"]["failover"] = ["chat"]

    path = write_inventory(change)
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "routing.routes.reasoning: a terminal route never falls back" in err


def test_render_writes_every_config_file_per_host_without_connecting(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["render", str(REPO / "inventory" / "lab.yml"), "--out", str(out)]) == 0
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    for host in ("lab-cp", "lab-vllm", "lab-ollama", "lab-agent"):
        assert f"{host}/etc/hearth/nftables.conf" in files
        assert f"{host}/etc/wireguard/wg0.conf" in files
        assert f"{host}/etc/ssh/sshd_config.d/10-hearth.conf" in files
    assert "lab-ollama/etc/systemd/system/ollama.service" in files
    assert "lab-cp/etc/hearth/gateway/policy.yaml" in files
    assert "lab-cp/etc/systemd/system/hearth-gateway.service" in files
    assert not any(f.startswith("lab-vllm/etc/hearth/gateway") for f in files)  # the gateway: lab-cp only
    assert "lab-vllm/etc/hearth/heal.json" in files  # the healing timer on the GPU host
    wg = (out / "lab-cp/etc/wireguard/wg0.conf").read_text()
    assert "read from the host at deploy" in wg  # keys live on the hosts, never in render output
