"""Lab: `hearth status INVENTORY` against the deployed lab (issue 13 item 4).

Run as an operator on the overlay would run it (in a local lab: inside another lab
machine's network namespace, with this checkout's hearth), it reports what the
inventory says: the gateway and every terminal route up, every upstream the inventory
gives the gateway with the state the lab is in, every host with its k3s role and its
node Ready as the first k3s server reports it (over SSH, read-only). With the sleeper
asleep, it says so and wakes nothing: no magic packet, the machine stays asleep.
Everything expected is derived from the inventory under test.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import gateway_config_from_inventory, upstream_name
from hearth.inventory import load_inventory
from hearth.status_k3s import k3s_hosts
from tests.lab.lab_gateway_admin import magic_packets, restore_awake, wait_upstream_state

pytestmark = pytest.mark.lab


def _status(lab: Any, inv: Any, client: str, *extra: str) -> tuple[int, dict[str, Any]]:
    argv = [str(Path(sys.executable).with_name("hearth")), "status", str(lab.inventory), "--json", *extra]
    if lab.local:
        from hearth.lab.network import netns_name

        argv = ["ip", "netns", "exec", netns_name(client), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout)


def _expected(inv: Any) -> tuple[dict[str, str], set[str]]:
    """Upstream name -> host, and the terminal routes, as the deployed gateway has them."""
    fake = itertools.count()
    cfg = gateway_config_from_inventory(inv, resolve=lambda _ref: f"unread-{next(fake)}")
    hosts = {upstream_name(h, i, len(inv.hosts[h].serves)): h
             for h in inv.hosts for i in range(len(inv.hosts[h].serves))}
    return {u: hosts.get(u, "") for u in cfg.upstreams}, {r for r, rc in cfg.routes.items() if rc.terminal}


def _check(report: dict[str, Any], inv: Any, asleep: set[str]) -> list[str]:
    """What in the report disagrees with the inventory (empty: all agrees)."""
    bad: list[str] = []
    upstreams, terminal = _expected(inv)
    engines = {upstream_name(h, i, len(inv.hosts[h].serves)): serve.engine
               for h in inv.hosts for i, serve in enumerate(inv.hosts[h].serves)}
    tiers = report["tiers"]
    core = {c["name"]: c for c in tiers["core"]}
    if core.get("gateway", {}).get("state") != "up":
        bad.append(f"gateway {core.get('gateway')}")
    for r in terminal:
        got = core.get(f"route {r} (terminal)", {}).get("state")
        if got not in ("up", "asleep"):
            bad.append(f"terminal route {r}: {got}")
    rows = {u["name"]: u for u in tiers["inference"]}
    if set(rows) != set(upstreams):
        bad.append(f"upstreams {sorted(rows)} != inventory's {sorted(upstreams)}")
    for name, host in upstreams.items():
        row = rows.get(name, {})
        h = inv.hosts.get(host)
        if h is None or h.os != "linux" or engines.get(name) not in ("ollama", "vllm"):
            continue  # an upstream hearth does not run (a Windows box, a server it does not install): the lab's
        want = "asleep" if host in asleep else "up"
        if row.get("state") != want:
            bad.append(f"upstream {name}: {row.get('state')}, want {want}")
        if want == "up" and not isinstance(row.get("loaded"), list):
            bad.append(f"upstream {name}: loaded models not read ({row.get('loaded')})")
        if want == "asleep" and row.get("loaded") is not None:
            bad.append(f"upstream {name}: an asleep engine was asked for its models")
    hosts = {h["name"]: h for h in tiers["infrastructure"]}
    if set(hosts) != set(inv.hosts):
        bad.append(f"hosts {sorted(hosts)} != inventory's {sorted(inv.hosts)}")
    k3s = set(k3s_hosts(inv))
    for name, h in inv.hosts.items():
        row = hosts.get(name, {})
        if h.os == "linux" and h.managed and row.get("state") != ("asleep" if name in asleep else "up"):
            bad.append(f"host {name}: {row.get('state')}")
        role = "server" if "k3s_server" in h.roles else "agent" if "k3s_agent" in h.roles else None
        if row.get("k3s") != role:
            bad.append(f"host {name}: k3s {row.get('k3s')}, inventory says {role}")
        if name in k3s and name not in asleep and row.get("k3s_node") != "Ready":
            bad.append(f"k3s node {name}: {row.get('k3s_node')}")
    if k3s:
        nodes = report["k3s"]
        if nodes["state"] != "up" or nodes["unknown_nodes"]:
            bad.append(f"k3s: {nodes}")
    return bad


def _until_agrees(lab: Any, inv: Any, client: str, asleep: set[str], within_s: float = 90) -> dict[str, Any]:
    """`hearth status` until the report agrees with the inventory (bounded); its last report."""
    deadline = time.monotonic() + within_s
    while True:
        rc, report = _status(lab, inv, client)
        bad = _check(report, inv, asleep)
        if not bad and rc == 0 and report["ok"]:
            return report
        assert time.monotonic() < deadline, f"hearth status (exit {rc}) disagrees with the inventory: {bad}"
        time.sleep(2)


def test_status_reports_what_the_inventory_says_and_wakes_nothing(lab: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    client = next(n for n, h in inv.hosts.items()
                  if h.os == "linux" and n != inv.gateway.host and not h.sleep.sleeps)
    sleepers = [n for n, h in inv.hosts.items() if h.sleep.sleeps and h.os == "linux" and h.serves]
    gateway = lab.host(inv.gateway.host)
    if lab.local and sleepers:
        # a known start: an earlier check may have woken the sleeper with its own packet, which
        # the gateway (never probing a host it holds asleep) learns only from a request
        from hearth.lab.state import lab_root, load_record

        rec = load_record(lab_root())
        assert rec is not None
        restore_awake(gateway, inv, rec, rec.machines[sleepers[0]],
                      upstream_name(sleepers[0], 0, len(inv.hosts[sleepers[0]].serves)))
    t0 = time.monotonic()
    report = _until_agrees(lab, inv, client, asleep=set())
    print(f"\nstatus: {len(report['tiers']['inference'])} upstreams, {len(report['tiers']['infrastructure'])} hosts, "
          f"k3s nodes {report['k3s']['nodes']}; agreed after {time.monotonic() - t0:.1f}s, one run took "
          f"{report['took_s']}s")

    if not lab.local or not sleepers:
        return
    # the sleeper asleep: reported asleep, nothing woken
    from hearth.lab import machine as lab_machine
    from hearth.lab import power_cli
    from hearth.lab.state import lab_root, load_record

    sleeper = sleepers[0]
    upstream = upstream_name(sleeper, 0, len(inv.hosts[sleeper].serves))
    record = load_record(lab_root())
    assert record is not None
    machine = record.machines[sleeper]
    try:
        power_cli.sleep(record, machine)
        wait_upstream_state(gateway, inv, upstream, "asleep")
        before = magic_packets(inv.hosts[sleeper].mac)
        report = _until_agrees(lab, inv, client, asleep={sleeper}, within_s=30)
        host_row = next(h for h in report["tiers"]["infrastructure"] if h["name"] == sleeper)
        assert host_row["state"] == "asleep"
        assert magic_packets(inv.hosts[sleeper].mac) == before
        assert lab_machine.power_state(machine) == "asleep"
    finally:
        restore_awake(gateway, inv, record, machine, upstream)
