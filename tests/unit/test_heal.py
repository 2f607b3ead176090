"""The healing timer (issue 23 item 5): decisions with fake probes and units, files from the inventory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import heal as configs
from hearth.configs import vllm as vllm_configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.telemetry import heal

REPO = Path(__file__).resolve().parents[2]


class World:
    """Serves that are up or down, units and a clock; records what the run did."""

    def __init__(self, down: set[str], states: dict[str, str] | None = None, comes_back: bool = True,
                 degraded: str | None = None) -> None:  # fmt: skip
        self.down, self.states, self.comes_back, self.degraded = set(down), states or {}, comes_back, degraded
        self.now, self.calls, self.logs = 1000.0, [], []  # type: ignore[var-annotated]

    def probe(self, url: str, timeout: float) -> str | None:
        self.calls.append(("probe", url))
        return "ConnectionRefusedError" if url in self.down else None

    def restart(self, unit: str) -> bool:
        self.calls.append(("restart", unit))
        if self.comes_back:
            self.down.discard(unit_url(unit))
        return True

    def ops(self) -> heal.Ops:
        return heal.Ops(probe=self.probe, unit_state=lambda u: self.states.get(u, "failed"), restart=self.restart,
                        start=lambda u: self.calls.append(("start", u)) is None, cuda_degraded=lambda: self.degraded,
                        sleep=self.advance, clock=lambda: self.now,
                        log=lambda level, text: self.logs.append((level, text)))  # fmt: skip

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def restarts(self) -> list[str]:
        return [c[1] for c in self.calls if c[0] == "restart"]


def unit_url(unit: str) -> str:
    return f"http://10.0.0.5:1/{unit}"


def cfg(units: list[str], terminal: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"host": "gpu1", "terminal_routes": terminal or [], "max_restarts_per_hour": 3, "backoff_s": 60,
            "probe_timeout_s": 5, "cuda_recovery_unit": None,
            "serves": [{"name": u, "unit": u, "probe": unit_url(u), "ready_timeout_s": 30} for u in units],
            **extra}  # fmt: skip


def test_a_dead_serve_is_restarted_and_waited_for_in_start_order() -> None:
    units = ["vllm-a.service", "vllm-b.service", "ollama.service"]
    world = World({unit_url("vllm-b.service"), unit_url("ollama.service")})
    state: dict[str, Any] = {}
    report = heal.run(cfg(units), state, world.ops())
    assert world.restarts() == ["vllm-b.service", "ollama.service"]
    # b answered again before ollama was touched: sequential, like the GPU start order
    order = [c for c in world.calls if c[1] in (unit_url("vllm-b.service"), "vllm-b.service", "ollama.service")]
    assert order.index(("restart", "ollama.service")) > order.index(("probe", unit_url("vllm-b.service")), 2)
    assert report.up == {u: True for u in units}
    assert state["counts"] == {"vllm-b.service": 1, "ollama.service": 1}
    warnings = [text for level, text in world.logs if level == heal.WARNING]
    assert any("vllm-b.service" in text and "restarting" in text for text in warnings)


def test_a_starting_unit_is_left_alone() -> None:
    world = World({unit_url("vllm-a.service")}, {"vllm-a.service": "activating"})
    heal.run(cfg(["vllm-a.service"]), {}, world.ops())
    assert world.restarts() == []


def test_a_terminal_route_host_pages_and_never_restarts() -> None:
    world = World({unit_url("vllm-spark.service")}, degraded="cuInit returned 999")
    state: dict[str, Any] = {}
    config = cfg(["vllm-spark.service"], terminal=["reasoning"], cuda_recovery_unit="hearth-recover-cuda.service")
    report = heal.run(config, state, world.ops())
    assert world.restarts() == [] and not [c for c in world.calls if c[0] == "start"]
    pages = [text for level, text in world.logs if level == heal.CRIT and text.startswith("PAGE")]
    assert len(pages) == 2 and "reasoning" in pages[1]
    assert state["pages"] == {"cuda-recovery": 1, "vllm-spark.service": 1} and report.up["vllm-spark.service"] is False


def test_budget_per_hour_with_backoff_then_a_page() -> None:
    world = World({unit_url("ollama.service")}, comes_back=False)
    state: dict[str, Any] = {}
    config = cfg(["ollama.service"])
    done = []
    for _ in range(40):  # one run a minute for 40 minutes, the serve never comes back
        heal.run(config, state, world.ops())
        done.append(len(world.restarts()))
        world.now += 60
    # restarts at once, then after >= 60 s, then after >= 120 s; the 4th is over the budget
    assert done[-1] == 3
    assert heal.allowed(config, state, "ollama.service", world.now) == (
        False, "budget exhausted (3 restarts in the last hour)")  # fmt: skip
    assert any("budget exhausted" in text and text.startswith("PAGE") for _, text in world.logs)
    times = state["restarts"]["ollama.service"]
    assert times[1] - times[0] >= 60 and times[2] - times[1] >= 120
    world.now += 3600  # an hour later the budget is back
    heal.run(config, state, world.ops())
    assert len(world.restarts()) == 4


def test_cuda_degraded_runs_the_recovery_instead_of_single_restarts() -> None:
    world = World({unit_url("vllm-a.service")}, degraded="cuInit returned 999")
    report = heal.run(cfg(["vllm-a.service"], cuda_recovery_unit="hearth-recover-cuda.service"), {}, world.ops())
    assert ("start", "hearth-recover-cuda.service") in world.calls and world.restarts() == []
    assert report.actions == ["cuda-recovery:started"]


def test_metrics_of_a_run(tmp_path: Path) -> None:
    world = World({unit_url("ollama.service")})
    state: dict[str, Any] = {}
    config = cfg(["ollama.service"])
    report = heal.run(config, state, world.ops())
    text = heal.render(config, state, report, world.now)
    assert 'hearth_heal_restarts_total{host="gpu1",unit="ollama.service"} 1' in text
    assert 'hearth_heal_serve_up{host="gpu1",unit="ollama.service"} 1' in text
    assert 'hearth_heal_terminal_host{host="gpu1"} 0' in text
    promtool = subprocess.run(["which", "promtool"], capture_output=True, text=True).stdout.strip()
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr


def test_the_probe_reports_why() -> None:
    assert heal.http_probe("http://127.0.0.1:9/none", 1.0) is not None


@pytest.fixture(scope="module")
def lab2() -> Inventory:
    return load_inventory(REPO / "inventory" / "lab2.yml", group_defaults())


@pytest.fixture(scope="module")
def example() -> Inventory:
    return load_inventory(REPO / "inventory" / "example.yml", group_defaults())


def test_config_from_the_inventory(lab2: Inventory, example: Inventory) -> None:
    files = {f.dest: f.render() for f in configs.host_files(lab2, "den-mini")}
    data = json.loads(files[configs.CONFIG])
    assert data["terminal_routes"] == [] and [s["unit"] for s in data["serves"]] == ["ollama.service"]
    assert data["serves"][0]["probe"] == "http://10.78.0.4:11434/v1/models"
    assert json.loads({f.dest: f.render() for f in configs.host_files(lab2, "den-rtx")}[configs.CONFIG])[
        "terminal_routes"] == ["deep"]  # fmt: skip
    assert configs.host_files(lab2, "den-pi") == []  # no GPU; its OpenAI server is not hearth's
    gateway_box = json.loads({f.dest: f.render() for f in configs.host_files(lab2, "den-gw")}[configs.CONFIG])
    assert [s["unit"] for s in gateway_box["serves"]] == ["vllm-qwen2.5-7b-long.service"]
    assert gateway_box["serves"][0]["probe"] == "http://10.78.0.2:8200/v1/models"
    assert gateway_box["terminal_routes"] == []
    for name, host in example.hosts.items():
        engines = {s.engine for s in host.serves}
        if not configs.applies(example, name):
            assert not (host.os == "linux" and host.gpus and engines & {"vllm", "ollama"}), name
            continue
        units = [s["unit"] for s in configs.config(example, name)["serves"]]
        ordered = sorted((s for s in host.serves if s.engine == "vllm"),
                         key=lambda s: (s.start_order is None, s.start_order or 0))  # fmt: skip
        assert [u for u in units if u.startswith("vllm-")] == [vllm_configs.unit_name(s) for s in ordered]
        assert ("ollama.service" in units) == ("ollama" in engines) and units[-1:] != ["vllm-"]
    spark = next(n for n, h in example.hosts.items() if any(g.unified_memory for g in h.gpus))
    assert configs.config(example, spark)["terminal_routes"]


def test_installed_script_is_the_tested_module(lab2: Inventory) -> None:
    script = {f.dest: f for f in configs.host_files(lab2, "den-mini")}[configs.SCRIPT]
    assert script.render() == Path(heal.__file__).read_text() and script.mode == "0755"
