"""roles/ollama taking over what Ollama's install.sh left, planned against a model host.

install.sh's Ollama listens on loopback, so on a host hearth already heals (install.sh run
again on it) the healing timer finds the serve down and restarts it: the role stops the
timer with that Ollama, before the ollama user changes (usermod refuses a user with a
running process), and starts it again once hearth's Ollama runs. In a CI run the timer
once started install.sh's Ollama again between the two steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hearth.configs import heal as heal_configs
from hearth.configs import ollama as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from tests.unit.role_plan import plan_roles
from tests.unit.test_ollama_warm_role import HOST, answer, deployed, inventory

STOP = "Stop the Ollama that install.sh set up (taking it over)"
WITH_HEAL = f"{STOP}, and the healing timer meanwhile"
HEAL_BACK = "Healing timer running again (paused for the takeover)"


def install_sh_left(inv: Inventory, heal_timer: bool) -> dict[str, Any]:
    """A deployed box where install.sh put its binary (a regular file) over hearth's link."""
    box = deployed(inv, warm_unit=True)
    box["links"] = {}
    box["files"] = {**box["files"], configs.BINARY: ("root", "root", 755)}
    if heal_timer:
        box["files"][heal_configs.TIMER] = ("root", "root", 644)
    box["users"]["ollama"] = {**box["users"]["ollama"], "home": "/usr/share/ollama", "groups": []}
    return box


def plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, heal_timer: bool) -> tuple[list[str], list[str], list[str]]:
    """(every step in order; the steps that run; the command lines they send)."""
    path = inventory(tmp_path, keep_warm=True)
    inv = load_inventory(path, group_defaults())
    box, sent = install_sh_left(inv, heal_timer), []
    steps = plan_roles(monkeypatch, inv, path, ["roles/ollama/main.py"], [HOST],
                       lambda host, cls, kwargs: answer(box, cls, kwargs), sent=sent)[HOST]
    return [step for step, _ in steps], [step for step, runs in steps if runs], sent


def test_the_healing_timer_is_stopped_with_install_shs_ollama_and_started_again(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    steps, runs, sent = plan(monkeypatch, tmp_path, heal_timer=True)
    assert STOP not in steps and WITH_HEAL in runs and HEAL_BACK in runs
    user = next(step for step in runs if step.startswith("User ollama"))
    assert steps.index(WITH_HEAL) < steps.index(user) < steps.index("Ollama enabled and running") \
        < steps.index(HEAL_BACK)
    assert ("systemctl stop hearth-heal.timer hearth-heal.service && "
            "if systemctl cat ollama.service >/dev/null 2>&1; then systemctl stop ollama.service; fi") in sent
    assert "systemctl start hearth-heal.timer" in sent


def test_without_a_healing_timer_only_ollama_is_stopped_and_only_if_install_sh_left_its_unit(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    steps, runs, sent = plan(monkeypatch, tmp_path, heal_timer=False)
    assert STOP in runs and WITH_HEAL not in steps and HEAL_BACK not in steps
    assert "if systemctl cat ollama.service >/dev/null 2>&1; then systemctl stop ollama.service; fi" in sent
    assert not any("hearth-heal" in line for line in sent)
