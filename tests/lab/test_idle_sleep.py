"""Lab: the whole sleep loop of a Linux sleeper (issue 13 item 1).

With the sleeper's ``idle_minutes`` shortened through a copy of the inventory
(deployed with pyinfra to the sleeper only), the host suspends itself once idle
(roles/sleep's hearth-idle), the next request through the gateway wakes it with one
magic packet and is answered, and a keep-warm window of the gateway keeps it up past
its idle time. Every host, port and time comes from the inventory under test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import sleep as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from tests.lab import journal
from tests.lab.admin_api import keep_warm
from tests.lab.test_gateway import client_key, deployed_serves, request
from tests.lab.test_gateway_reload import deploy_gateway_host as deploy_one_host
from tests.lab.waiting import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow_scenario]


def _decisions(node: Any, mark: str) -> list[str]:
    """hearth-idle's decisions logged after ``mark`` (never an earlier check's)."""
    return journal.after(node, mark, idents=["hearth-idle"])


def test_idle_sleeper_suspends_itself_a_request_wakes_it_keep_warm_holds_it(lab: Any, tmp_path: Path) -> None:
    if not lab.local:
        pytest.skip("lets a lab machine sleep and wakes it")
    from hearth.lab import machine as lab_machine
    from hearth.lab import power_cli
    from hearth.lab.state import lab_root, load_record

    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    sleepers = [(h, up, s) for h, up, s in deployed_serves(inv) if configs.applies(inv, h)]
    if not sleepers:
        pytest.skip("no Linux sleeper serves a model in this inventory")
    sleeper, upstream, serve = sleepers[0]
    gateway = lab.host(inv.gateway.host)
    client = lab.host(next(n for n, h in inv.hosts.items()
                           if h.os == "linux" and n != inv.gateway.host and not h.sleep.sleeps))
    node = lab.host(sleeper)
    record = load_record(lab_root())
    assert record is not None
    machine = record.machines[sleeper]

    minutes = 1
    idle_s, tick_s = minutes * 60, configs.interval_s(minutes)
    data = yaml.safe_load(lab.inventory.read_text())
    data["hosts"][sleeper]["sleep"]["idle_minutes"] = minutes
    short = tmp_path / "short-idle.yml"
    short.write_text(yaml.safe_dump(data, sort_keys=False))
    before_deploy = journal.cursor(node)
    try:
        deploy_one_host(short, sleeper)
        deployed = time.monotonic()
        # 1. left idle, it suspends itself: the deploy changed its settings, so its clock starts
        #    again there (never under the deploy's own steps); idle minutes + ticks at most
        wait_for("the idle sleeper suspends itself", lambda: lab_machine.power_state(machine),
                 idle_s + 4 * tick_s + 60, 2.0, done=lambda state: state == "asleep")
        print(f"\nidle-sleep: {sleeper} asleep {time.monotonic() - deployed:.1f}s after the deploy that set "
              f"idle_minutes={minutes} (check every {tick_s}s)")

        # 2. the next request through the gateway wakes it with one magic packet and is answered
        log = Path(lab_root()) / "daemon.log"
        packet = f"magic packet for {inv.hosts[sleeper].mac}"
        before = log.read_text().count(packet) if log.exists() else 0
        body = {"model": serve.name, "messages": [{"role": "user", "content": "implement a function"}]}
        asked = time.monotonic()
        status, headers, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
        answered = time.monotonic() - asked
        assert status == 200, payload
        assert headers["x-hearth-upstream"] == upstream
        assert lab_machine.power_state(machine) == "on"
        if log.exists():
            assert log.read_text().count(packet) - before == 1
        with node.sudo():
            assert json.loads(node.file(configs.CONFIG).content_string)["idle_minutes"] == minutes
        said = _decisions(node, before_deploy)  # persistent journal: the decision before the sleep is kept
        assert any(line.startswith("suspending: idle ") for line in said), said[-20:]
        print(f"idle-sleep: request to the self-suspended {sleeper} through the gateway -> answer in "
              f"{answered:.1f}s (including the client's SSH round trip); journal: "
              f"{next(line for line in said if line.startswith('suspending'))}")

        # 2b. a request answered between two checks restarts the idle clock although it leaves no
        #     model loaded (KEEP_ALIVE=0): hearth-idle reads it from Ollama's request log
        mark = journal.cursor(node)
        wait_for("a hearth-idle check after the answer (it knows where the journal ends)",
                 lambda: _decisions(node, mark), 2 * tick_s + 30, 2.0)
        mark = journal.cursor(node)
        status, _, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
        assert status == 200, payload
        said = wait_for("hearth-idle counts the request answered since its last check",
                        lambda: [line for line in _decisions(node, mark) if "ollama answered" in line],
                        2 * tick_s + 30, 2.0)
        print(f"idle-sleep: answered between two checks -> {said[0]}")

        # 3. a keep-warm window holds it up past its idle time; the journal says why
        warm_since = journal.cursor(node)
        result = keep_warm(gateway, inv, upstream, 10)
        assert result["awake"], result
        held_until = time.monotonic() + idle_s + 2 * tick_s
        while time.monotonic() < held_until:
            assert lab_machine.power_state(machine) == "on", "slept during a keep-warm window"
            time.sleep(2)
        said = _decisions(node, warm_since)
        assert any(line.startswith("awake: ") and "model loaded" in line for line in said), said[-20:]
        assert not any(line.startswith("suspending") for line in said), said
    finally:
        # The keep-warm window (10 min) holds the host up while the original inventory goes back;
        # then it ends, so no later check finds the model held by it.
        if lab_machine.power_state(machine) != "on":
            power_cli.wake(record, machine)
        if lab_machine.power_state(machine) == "on":
            deploy_one_host(lab.inventory, sleeper)
            keep_warm(gateway, inv, upstream, None)
            address = f"{serve_address(inv, sleeper)}:{serve.listen_port}"
            gateway.run(f"curl -sS -m 30 http://{address}/api/generate "
                        f"-d '{json.dumps({'model': serve.model, 'keep_alive': 0})}'")
            node.run(f"sudo rm -f {configs.STATE}")  # the idle clock starts again


def serve_address(inv: Any, name: str) -> str:
    host = inv.hosts[name]
    return str(host.overlay_ip or host.address)
