"""Lab: the healing timer (issue 23 item 5) on the GPU machines, derived from the inventory.

A serve whose process hangs (SIGSTOP: alive to systemd, silent to clients -- the case
systemd's own Restart= cannot see) is restarted by hearth-heal.timer within its period
and the gateway routes to it again; on a host serving a terminal route the timer only
pages. Real: systemd timers and units, the Ollama stand-in's HTTP server, the gateway.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from hearth.configs import heal as configs
from hearth.configs.base import settings
from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import upstream_name
from hearth.inventory import Inventory, load_inventory, resolve_secret
from tests.lab import journal
from tests.lab.waiting import wait_for

pytestmark = pytest.mark.lab
PERIOD_S = 3  # between two looks at a host


def within_s(interval: int) -> int:
    """How long the timer may take to act: two of its passes (one may be lost, as a real
    host's timer can be: in the lab a container's cgroup glitch once failed a pass with
    219/CGROUP) and a pass's own probes."""
    return 2 * interval + 60


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    return load_inventory(lab.inventory, group_defaults())


def healed_hosts(inv: Inventory, terminal: bool) -> list[str]:
    """Hosts with the timer whose serves it restarts (or only pages about), always-on ones first."""
    names = [n for n in inv.linux_hosts() if configs.applies(inv, n)
             and bool(configs.config(inv, n)["terminal_routes"]) == terminal]  # fmt: skip
    return sorted(names, key=lambda n: inv.hosts[n].sleep.sleeps)


def first_healed(lab: Any, inv: Inventory, terminal: bool) -> tuple[str, Any, int]:
    """(name, testinfra host, the timer's period in s) of the first of :func:`healed_hosts`; skips without one."""
    hosts = healed_hosts(inv, terminal)
    if not hosts:
        pytest.skip("no GPU host serving a terminal route in this inventory" if terminal
                    else "no GPU host with a serve outside terminal routes in this inventory")
    name = hosts[0]
    return name, lab.host(name), int(settings(inv, name)["heal_interval_s"])


def heal_metrics(node: Any) -> str:
    """The timer's textfile for node_exporter."""
    return node.check_output("cat /var/lib/prometheus/node-exporter/hearth_heal.prom")


def main_pid(node: Any, unit: str) -> int:
    return int(node.check_output(f"systemctl show -p MainPID --value {unit}") or 0)


def heal_log(node: Any, mark: str) -> str:
    """hearth-heal's lines after ``mark`` (this check's, never an earlier one's)."""
    return "\n".join(journal.after(node, mark, units=["hearth-heal.service"]))


def answers(node: Any, url: str) -> bool:
    return node.run(f"curl -sf -m 5 -o /dev/null {shlex.quote(url)}").rc == 0


def test_a_hung_serve_is_restarted_by_the_timer_and_routed_to_again(lab: Any, inv: Inventory) -> None:
    name, node, interval = first_healed(lab, inv, terminal=False)
    serve = configs.serves(inv, name)[-1]  # Ollama when there is one (the last in start order)
    unit, url = serve["unit"], serve["probe"]
    assert node.service("hearth-heal.timer").is_enabled and node.service("hearth-heal.timer").is_running
    wait_for(f"{unit} answers before the test", lambda: answers(node, url), 60, PERIOD_S)
    before = main_pid(node, unit)
    cursor = journal.cursor(node)
    node.check_output(f"sudo kill -STOP {before}")
    try:
        assert not answers(node, url)
        # within one period of the timer (plus the two probes' timeouts and the restart)
        def restarted() -> dict[str, int | bool]:
            pid = main_pid(node, unit)
            return {"MainPID": pid, "answers": pid not in (0, before) and answers(node, url)}

        wait_for(f"{unit} restarted by hearth-heal (MainPID not {before}) and answering", restarted,
                 within_s(interval), PERIOD_S, done=lambda seen: seen["answers"])  # fmt: skip
    finally:
        node.run(f"sudo kill -CONT {before}")
    # the pass logs "answers again" after its own next probe: wait for that line (bounded)
    log = wait_for("hearth-heal logs the serve answering again", lambda: heal_log(node, cursor), 60,
                   PERIOD_S, done=lambda text: "answers again" in text)
    assert f"{unit} ({serve['name']}) is down" in log and "restarting" in log, log
    metrics = heal_metrics(node)
    assert f'hearth_heal_restarts_total{{host="{name}",unit="{unit}"}} ' in metrics
    assert f'hearth_heal_restarts_total{{host="{name}",unit="{unit}"}} 0' not in metrics
    _gateway_routes_to(lab, inv, name)


def _gateway_routes_to(lab: Any, inv: Inventory, name: str) -> None:
    """A request for the healed host's first model is answered by that host again (bounded wait)."""
    if inv.gateway is None:
        return
    keys = [c for c in inv.clients.values() if c.routes is None]
    if not keys:
        pytest.skip("no client in this inventory may use every route")
    host = inv.hosts[name]
    serve = host.serves[0]
    upstream = upstream_name(name, 0, len(host.serves))
    client = lab.host(next(n for n in inv.linux_hosts() if n not in (name, inv.gateway.host)
                           and not inv.hosts[n].sleep.sleeps))  # fmt: skip
    gw = inv.hosts[inv.gateway.host]
    body = json.dumps({"model": serve.name, "messages": [{"role": "user", "content": "are you back?"}]})
    command = " ".join(shlex.quote(a) for a in [
        "curl", "-sS", "-m", "60", "-D", "-", "-o", "/dev/null", "-H",
        f"Authorization: Bearer {resolve_secret(keys[0].key)}", "-H", "Content-Type: application/json",
        "-d", body, f"http://{gw.overlay_ip}:{inv.gateway.port}/v1/chat/completions"])  # fmt: skip

    def routed(head: str) -> bool:
        return " 200" in head.split("\n", 1)[0] and f"x-hearth-upstream: {upstream}" in head

    wait_for(f"the gateway answers {serve.name} from {upstream} again", lambda: client.run(command).stdout.lower(),
             120, PERIOD_S, done=routed)


@pytest.mark.slow_scenario
def test_a_terminal_route_host_is_paged_about_never_restarted(lab: Any, inv: Inventory) -> None:
    name, node, interval = first_healed(lab, inv, terminal=True)
    unit = configs.serves(inv, name)[0]["unit"]
    cursor = journal.cursor(node)
    before = main_pid(node, unit)
    if before:
        node.check_output(f"sudo kill -STOP {before}")
    try:
        log = wait_for(f"hearth-heal pages about {unit}", lambda: heal_log(node, cursor), within_s(interval),
                       PERIOD_S, done=lambda text: f"PAGE: {unit}" in text)
        assert main_pid(node, unit) == before, "a terminal route's serve must never be restarted"
    finally:
        if before:
            node.run(f"sudo kill -CONT {before}")
    assert "): restarting" not in log and "not restarting, the operator is paged" in log
    metrics = heal_metrics(node)
    assert f'hearth_heal_terminal_host{{host="{name}"}} 1' in metrics
