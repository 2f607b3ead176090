"""Lab: the wake choices per route (issue 13 item 2) through the deployed gateway, with a
real sleeping machine and real magic packets.

The route a Linux sleeper serves is set to ``wake: spill`` and then ``wake: confirm`` in
a copy of the inventory (deployed to the gateway host only: a policy reload), the
sleeper put to sleep, and requests sent from another machine over the overlay:

* spill (where validation allows it: not on a terminal route, only with a spill or
  failover route): answered at once by an awake upstream of that chain, while one
  magic packet wakes the box in the background (it comes up, the gateway sees it
  healthy);
* confirm: without ``X-Hearth-Wake: 1`` no packet and the box stays asleep (answered by
  the failover chain, or 503 ``upstream_asleep`` saying how to ask); with the header the
  request holds for the wake (one packet) and the sleeper answers it.

The original inventory goes back to the gateway and the sleeper is left awake and known
awake, whatever fails. Everything comes from the inventory under test.
"""

from __future__ import annotations

import itertools
import json
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import load_inventory
from tests.lab.admin_api import admin
from tests.lab.lab_gateway_admin import magic_packets, restore_awake, upstream_states, wait_upstream_state
from tests.lab.test_gateway import client_key, deployed_serves, url
from tests.lab.test_gateway_reload import deploy_gateway_host

pytestmark = pytest.mark.lab


def _ask(node: Any, inv: Any, model: str, key: str, wake: bool = False) -> tuple[int, dict[str, str], str, float]:
    """A chat request with curl on ``node``: (status, lower-cased headers, body, seconds)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    args = ["curl", "-sS", "-m", "150", "-D", "-", "-H", f"Authorization: Bearer {key}",
            "-H", "Content-Type: application/json", "-d", json.dumps(body)]
    if wake:
        args += ["-H", "X-Hearth-Wake: 1"]
    t0 = time.monotonic()
    out = node.check_output(" ".join(shlex.quote(a) for a in [*args, url(inv, "/v1/chat/completions")]))
    took = time.monotonic() - t0
    head, _, payload = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, payload, took


def _policy(inv: Any) -> Any:
    fake = itertools.count()  # the routes only: secrets stay unread (distinct values pass the key checks)
    return gateway_config_from_inventory(inv, resolve=lambda _ref: f"unread-{next(fake)}")


def _awake_fallback(inv: Any, route: str, sleeper: str) -> set[str]:
    """Upstreams of the route's spill and failover chain on hosts other than the sleeper."""
    cfg = _policy(inv)
    chain, todo = [], [*cfg.routes[route].spill, *cfg.routes[route].failover]
    while todo:  # the failover chain as the gateway follows it (each route's own failover next)
        r = todo.pop(0)
        if r != route and r not in chain and r in cfg.routes:
            chain.append(r)
            todo += cfg.routes[r].failover
    return {u for r in chain for u in cfg.routes[r].upstreams
            if not cfg.upstreams[u].sleep.sleeps and cfg.upstreams[u].host != sleeper}


def test_spill_and_confirm_with_a_real_sleeper(lab: Any, tmp_path: Path) -> None:
    if not lab.local:
        pytest.skip("puts a lab machine to sleep")
    from hearth.lab import machine as lab_machine
    from hearth.lab import power_cli
    from hearth.lab.state import lab_root, load_record

    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None or inv.routing is None:
        pytest.skip("no gateway or routing in this inventory")
    sleepers = [(h, u, s) for h, u, s in deployed_serves(inv) if inv.hosts[h].sleep.sleeps]
    if not sleepers:
        pytest.skip("no Linux sleeper serves a model in this inventory")
    sleeper, upstream, serve = sleepers[0]
    route = serve.routes[0]
    fallback = _awake_fallback(inv, route, sleeper)
    model = f"{inv.routing.alias_prefix}/{route}"
    key = client_key(inv)
    mac = inv.hosts[sleeper].mac
    gateway = lab.host(inv.gateway.host)
    client = lab.host(next(n for n, h in inv.hosts.items()
                           if h.os == "linux" and n != inv.gateway.host and not h.sleep.sleeps))
    record = load_record(lab_root())
    assert record is not None
    machine = record.machines[sleeper]

    def deploy_with(choice: str) -> None:
        data = yaml.safe_load(lab.inventory.read_text())
        routes = data["routing"].setdefault("routes", {})
        if not routes.get(route):
            routes[route] = {}
        routes[route]["wake"] = choice
        path = tmp_path / f"wake-{choice}.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        deploy_gateway_host(path, inv.gateway.host)
        deadline = time.monotonic() + 30  # the deploy reloads the policy: the running gateway says so
        while admin(gateway, inv, "/admin/upstreams")["routes"][route]["wake"] != choice:
            assert time.monotonic() < deadline, f"the gateway never took wake: {choice} for {route}"
            time.sleep(0.5)

    def asleep_and_known() -> None:
        if lab_machine.power_state(machine) == "on":
            power_cli.sleep(record, machine)
        wait_upstream_state(gateway, inv, upstream, "asleep")

    rc = _policy(inv).routes[route]
    # validation refuses spill on a terminal route and on one with nowhere to spill to
    can_spill = not rc.terminal and bool(rc.spill or rc.failover)
    try:
        if can_spill:
            deploy_with("spill")
            asleep_and_known()
            before = magic_packets(mac)
            status, headers, payload, took = _ask(client, inv, model, key)
            if fallback:
                assert status == 200, payload
                assert headers["x-hearth-upstream"] in fallback, headers
                print(f"\nwake-choices: spill: {route} answered by {headers['x-hearth-upstream']} in {took:.2f}s "
                      f"while {sleeper} wakes")
            else:  # nothing awake to spill to: it holds for the wake
                assert status == 200 and headers["x-hearth-upstream"] == upstream, payload
            wait_upstream_state(gateway, inv, upstream, "healthy", within_s=120)  # woken in the background
            assert lab_machine.power_state(machine) == "on"
            assert magic_packets(mac) - before == 1
        else:
            print(f"\nwake-choices: {route} is terminal or has no spill / failover route: spill not allowed there")

        # confirm
        deploy_with("confirm")
        asleep_and_known()
        before = magic_packets(mac)
        status, headers, payload, _ = _ask(client, inv, model, key)
        if fallback:
            assert status == 200 and headers["x-hearth-upstream"] in fallback, (status, headers, payload)
        else:
            assert status == 503 and json.loads(payload)["error"]["code"] == "upstream_asleep", payload
            assert "X-Hearth-Wake: 1" in json.loads(payload)["error"]["message"]
        time.sleep(1.0)  # a packet sent by mistake would be logged by the power controller by now
        assert magic_packets(mac) == before
        assert lab_machine.power_state(machine) == "asleep"
        assert upstream_states(gateway, inv)[upstream] == "asleep"
        status, headers, payload, took = _ask(client, inv, model, key, wake=True)
        assert status == 200, payload
        assert headers["x-hearth-upstream"] == upstream, headers
        assert magic_packets(mac) - before == 1
        assert lab_machine.power_state(machine) == "on"
        print(f"wake-choices: confirm: no packet without the header; with it {sleeper} woken and "
              f"answered in {took:.1f}s")
    finally:
        deploy_gateway_host(lab.inventory, inv.gateway.host)
        restore_awake(gateway, inv, record, machine, upstream)
