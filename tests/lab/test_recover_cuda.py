"""Lab: the CUDA recovery trigger between the gateway and a GPU host (issue 11 item 4).

``POST /admin/recover-cuda/<host>`` on the gateway (admin token) reaches the host's
overlay-only trigger socket, which starts ``hearth-recover-cuda.service``: the host's
GPU services stop and start again one at a time, and the gateway routes to them
again. A host serving a terminal route is refused by the gateway and left alone.
Everything is derived from the inventory; each check leaves the services running
and the gateway seeing them healthy. Real: systemd units and sockets, the gateway,
the overlay and firewall; the GPU services are the vLLM/Ollama stand-ins and the
lab has no ``nvidia_uvm`` to reload (the script says so and goes on).
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest

from hearth.configs import recover_cuda as configs
from hearth.configs import vllm as vllm_configs
from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import admin_token_path, upstream_name
from hearth.inventory import Inventory, load_inventory
from tests.lab import journal
from tests.lab.test_vllm import _admin_upstreams, main_pid, show

pytestmark = pytest.mark.lab
UNIT = "hearth-recover-cuda.service"


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.gateway is None:
        pytest.skip("no gateway in this inventory")
    return inventory


def post_recover(lab: Any, inv: Inventory, host: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of the admin call, made on the gateway host with its admin token."""
    assert inv.gateway is not None
    url = f"http://127.0.0.1:{inv.gateway.port}/admin/recover-cuda/{host}"
    inner = (f'curl -sS -m 30 -w "\\n%{{http_code}}" -X POST -H "Authorization: Bearer $(cat {admin_token_path()})" '
             f"{shlex.quote(url)}")
    out = lab.host(inv.gateway.host).check_output(f"sudo sh -c {shlex.quote(inner)}")
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


def host_upstreams(inv: Inventory, name: str) -> list[str]:
    serves = inv.hosts[name].serves
    return [upstream_name(name, i, len(serves)) for i, s in enumerate(serves) if s.engine in ("vllm", "ollama")]


def wait_healthy(lab: Any, inv: Inventory, name: str, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    wanted = host_upstreams(inv, name)
    while True:
        rows = _admin_upstreams(lab, inv)
        states = {up: rows[up]["state"] for up in wanted}
        if all(s == "healthy" for s in states.values()):
            return
        assert time.monotonic() < end, f"not healthy within {deadline_s:.0f}s: {states}"
        time.sleep(2)


def test_recovery_restarts_the_gpu_services_in_order_and_the_gateway_routes_again(lab: Any, inv: Inventory) -> None:
    hosts = [n for n in inv.linux_hosts() if configs.triggerable(inv, n) and not inv.hosts[n].sleep.sleeps]
    if not hosts:
        pytest.skip("no always-on GPU host outside terminal routes in this inventory")
    name = sorted(hosts, key=lambda n: not vllm_configs.vllm_serves(inv, n))[0]  # a vLLM host first
    node = lab.host(name)
    services = configs.gpu_services(inv, name)
    conf = vllm_configs.settings(inv, name)
    budget = 120 + sum(vllm_configs.ready_timeout(s, conf) + 60 for s in vllm_configs.vllm_serves(inv, name))
    wait_healthy(lab, inv, name, 120)
    before = {s: main_pid(node, s) for s in services}
    assert inv.gateway is not None
    gateway = lab.host(inv.gateway.host)
    host_cursor = journal.cursor(node)  # the unit's run is what its journal says after this
    cursor = journal.cursor(gateway)
    try:
        code, body = post_recover(lab, inv, name)
        assert (code, body.get("recovery"), body.get("unit")) == (202, "accepted", UNIT), body
        end = time.monotonic() + budget
        while True:  # systemd clears InvocationID once a oneshot is inactive: read its end from the journal
            log = "\n".join(journal.after(node, host_cursor, units=[UNIT]))
            state = show(node, UNIT, "ActiveState", "Result", "ExecMainStatus")
            ended = "Deactivated successfully" in log or "Failed with result" in log
            if ended and state["ActiveState"] in ("inactive", "failed"):
                break
            assert time.monotonic() < end, f"{UNIT} did not finish within {budget}s: {state}\n{log}"
            time.sleep(2)
        assert (state["Result"], state["ExecMainStatus"]) == ("success", "0"), log
        lines = [ln.removeprefix("hearth-recover-cuda: ") for ln in log.splitlines()]
        started = [ln.removeprefix("starting ") for ln in lines if ln.startswith("starting ")]
        assert started == services, log  # one at a time, in the start order
        assert set(ln.removeprefix("stopping ") for ln in lines if ln.startswith("stopping ")) == set(services)
        for service in services:
            assert show(node, service, "ActiveState")["ActiveState"] == "active", service
            assert main_pid(node, service) not in (0, before[service]), f"{service} was not restarted"
        gw_log = "\n".join(journal.after(gateway, cursor, units=["hearth-gateway.service"]))
        events = [json.loads(ln.split("recover-cuda ", 1)[1]) for ln in gw_log.splitlines() if "recover-cuda {" in ln]
        assert [(e["host"], e["result"]) for e in events] == [(name, "accepted")], gw_log
    finally:
        for service in services:  # whatever failed: the host's GPU services run again, in order
            node.run(f"sudo systemctl start {shlex.quote(service)}")
    wait_healthy(lab, inv, name, 180)


def test_a_terminal_route_host_is_refused_and_left_alone(lab: Any, inv: Inventory) -> None:
    hosts = [n for n in inv.linux_hosts() if configs.applies(inv, n) and configs.terminal_routes(inv, n)]
    if not hosts:
        pytest.skip("no GPU host serving a terminal route in this inventory")
    name = hosts[0]
    awake = not inv.hosts[name].sleep.sleeps  # a sleeper is never woken to be looked at
    before = show(lab.host(name), UNIT, "InvocationID")["InvocationID"] if awake else None
    code, body = post_recover(lab, inv, name)
    assert code == 409 and body["error"]["code"] == "terminal_route_host", body
    assert all(route in body["error"]["message"] for route in configs.terminal_routes(inv, name))
    if awake:
        assert show(lab.host(name), UNIT, "InvocationID")["InvocationID"] == before, "it was recovered"
