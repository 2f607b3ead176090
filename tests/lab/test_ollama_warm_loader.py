"""Lab: hearth-ollama-warm.service loads the models kept warm (keep_alive negative) again after
every start of Ollama, without any request: after ``systemctl restart ollama`` and after
Ollama's main process is killed (``kill -9``: systemd's own Restart= brings it back).

Everything comes from the inventory under test: the always-on Linux Ollama hosts with warm
models whose server may hold them all at once (more warm models than ``max_loaded_models``
push each other out, as in Ollama); the unit's journal lines; Ollama's ``/api/ps`` asked on
the host at the address the inventory gives it (a probe that loads nothing). Each check puts
the server's loaded models back as it found them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hearth.configs import ollama as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.planner.ollama_server import max_loaded_models
from tests.lab import journal
from tests.lab.ollama_loaded import for_good, put_back, row
from tests.lab.waiting import wait_for

pytestmark = pytest.mark.lab
PERIOD_S = 1  # between two looks at a host
BACK_S = 60  # Ollama back after a restart (the unit's RestartSec=3 after a kill), its API answering
LOADED_S = configs.WARM_WAIT_S  # then the warm loader's own bound on its wait (the stand-in loads at once)


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    return load_inventory(lab.inventory, group_defaults())


def warm_hosts(inv: Inventory) -> list[str]:
    """Always-on Linux hosts whose Ollama keeps models warm and may hold them all at once."""
    found, reasons = [], []
    for name, host in inv.hosts.items():
        if host.os != "linux" or not host.managed or not configs.ollama_serves(inv, name):
            continue
        warm = configs.warm_serves(inv, name)
        if not warm:
            continue
        if host.sleep.sleeps:
            reasons.append(f"{name} sleeps")
        elif len(warm) > max_loaded_models(host):
            reasons.append(f"{name} keeps more models warm than it may hold at once")
        else:
            found.append(name)
    if not found:
        pytest.skip("no always-on Linux Ollama host with a model kept warm (keep_alive negative) in this "
                    "inventory" + (f" ({'; '.join(reasons)})" if reasons else ""))
    return found


def ps(node: Any, inv: Inventory, name: str) -> dict[str, dict[str, Any]] | None:
    """Model name -> its /api/ps row, or None while Ollama does not answer (restarting)."""
    result = node.run(f"curl -sS -f -m 5 http://{configs.listen_address(inv, name)}/api/ps")
    return {m["name"]: m for m in json.loads(result.stdout)["models"]} if result.rc == 0 else None


def main_pid(node: Any) -> int:
    return int(node.check_output("systemctl show -p MainPID --value ollama") or 0)


def restarts(state: dict[str, str]) -> int:
    """Automatic restarts systemd counted, from :func:`unit_state`."""
    return int(state["NRestarts"] or 0)


def unit_state(node: Any) -> dict[str, str]:
    """What systemd says of ollama.service (all a failed wait needs to show)."""
    props = "NRestarts,ActiveState,SubState,MainPID,Result,ExecMainCode,ExecMainStatus"
    out = node.check_output(f"systemctl show -p {props} ollama")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def loaded_again(node: Any, inv: Inventory, name: str, old_pid: int) -> dict[str, Any]:
    """Wait (bounded) for a new Ollama process, then for every warm model loaded for good by it."""
    wait_for(f"{name}: a new Ollama process (not {old_pid}) answering",
             lambda: main_pid(node) not in (0, old_pid) and ps(node, inv, name) is not None, BACK_S, PERIOD_S)
    models = [serve.model for serve in configs.warm_serves(inv, name)]

    def warm_rows() -> dict[str, Any]:
        rows = ps(node, inv, name) or {}
        return {model: row(rows, model) for model in models}

    return wait_for(f"{name}: {', '.join(models)} loaded for good again, with no request",
                    warm_rows, LOADED_S, PERIOD_S,
                    done=lambda rows: all(r is not None and for_good(r) for r in rows.values()))


def check_reloaded(lab: Any, inv: Inventory, act: Callable[[Any, int], None]) -> None:
    """On each warm host: ``act(node, main_pid)`` restarts Ollama; the warm loader ran and logged
    one line per warm model, and the models are loaded for good again."""
    for name in warm_hosts(inv):
        node = lab.host(name)
        assert node.service(configs.WARM_SERVICE).is_enabled, f"{name}: {configs.WARM_SERVICE} not enabled"
        before = ps(node, inv, name)
        assert before is not None, f"{name}: Ollama does not answer before the check"
        mark = journal.cursor(node)
        try:
            pid = main_pid(node)
            act(node, pid)
            loaded_again(node, inv, name, pid)
            lines = journal.after(node, mark, idents=["hearth-ollama-warm"])
            for serve in configs.warm_serves(inv, name):
                said = [line for line in lines if line.startswith(f"load {serve.model} ")]
                assert said and ": HTTP 200 in " in said[-1], (name, serve.model, lines)
            result = node.check_output(f"systemctl show -p Result --value {configs.WARM_SERVICE}")
            assert result == "success", (name, result, lines)
        finally:
            wait_for(f"{name}: Ollama answering again", lambda n=node, h=name: ps(n, inv, h) is not None,
                     BACK_S, PERIOD_S)
            put_back(node, inv, name, before)


def test_warm_loader_loads_again_after_a_restart_by_hand(lab: Any, inv: Inventory) -> None:
    check_reloaded(lab, inv, lambda node, pid: node.check_output("sudo systemctl restart ollama"))


def test_warm_loader_loads_again_after_a_crash_restarted_by_systemd(lab: Any, inv: Inventory) -> None:
    def crash(node: Any, pid: int) -> None:
        assert pid, "Ollama has no main process"
        count = restarts(unit_state(node))
        node.check_output(f"sudo kill -9 {pid}")
        # Restart= brought it back (NRestarts counts automatic restarts only), nobody started it by hand
        wait_for("systemd restarts Ollama by itself", lambda: unit_state(node), BACK_S, PERIOD_S,
                 done=lambda state: restarts(state) > count)

    check_reloaded(lab, inv, crash)
