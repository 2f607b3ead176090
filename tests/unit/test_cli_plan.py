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
