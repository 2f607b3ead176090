"""`hearth bench lab`: lab build time, first deploy, no-op re-run, k3s rollout, at 4 and 12 machines.

The 12-machine lab is the lab inventory scaled: extra k3s agents (no GPU) written
to a temporary inventory. Each size runs from nothing (`lab down` first): `lab up`
with the image cache as it is (the JSON says whether it was warm), then the
converge -> idempotence cycle, then (when the inventory has k3s, issue 15's numbers):

- the no-op re-run again without the k3s role (the same lab, the same minute), to show
  what k3s adds to it;
- a k3s setting of every node changed: the deploy restarts them servers first, one
  node at a time, and the clock stops when the first server lists every node Ready.

The lab is left down afterwards.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle, lifecycle
from hearth.lab.image import base_image_key
from hearth.lab.k3s_variants import deploy_without_k3s, wait_every_node_ready, with_every_node_setting
from hearth.lab.sh import LabError
from hearth.lab.spec import load_spec
from hearth.lab.state import cache_dir, exclusive
from hearth.status_k3s import k3s_hosts

LAB_INVENTORY = cycle.REPO / "inventory" / "lab.yml"
SIZES = (4, 12)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench lab`."""
    p = subparsers.add_parser("lab", help="lab build / first deploy / no-op re-run, 4 vs 12 hosts")
    p.add_argument("--out", type=Path, required=True, help="write results here (JSON)")
    p.add_argument("--inventory", type=Path, default=LAB_INVENTORY)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.set_defaults(func=run)


def scaled_inventory(data: dict[str, Any], size: int) -> dict[str, Any]:
    """A copy of ``data`` with k3s agents added (or hosts dropped) until it has ``size`` hosts."""
    out = copy.deepcopy(data)
    # machines only: a managed: false box (routed to, never deployed) is no lab machine
    hosts: dict[str, Any] = {n: h for n, h in out["hosts"].items() if h.get("managed", True) is not False}
    out["hosts"] = hosts
    if size < len(hosts):
        raise LabError(f"cannot scale {len(hosts)} hosts down to {size}")
    lan = ipaddress.IPv4Network(out["lan"]["cidr"])
    overlay = ipaddress.IPv4Network(out["overlay"]["cidr"])
    used_addr = {h["address"] for h in hosts.values()}
    used_mac = {str(h.get("mac", "")).lower() for h in hosts.values()}
    last = max(int(ipaddress.IPv4Address(h["address"])) for h in hosts.values())
    n = 0
    while len(hosts) < size:
        n += 1
        addr = ipaddress.IPv4Address(last + n)
        if addr not in lan or addr == lan.broadcast_address:
            raise LabError(f"{lan} has no room for {size} hosts")
        octet = int(addr) & 0xFF
        mac = f"02:68:65:61:{(int(addr) >> 8) & 0xFF:02x}:{octet:02x}"
        if str(addr) in used_addr or mac in used_mac:
            continue
        hosts[f"lab-agent{n + 1}"] = {
            "address": str(addr),
            "overlay_ip": str(overlay.network_address + octet),
            "mac": mac,
            "arch": "amd64",
            "roles": ["k3s_agent"],
        }
    return out


def measure(inventory: Path, size: int) -> dict[str, Any]:
    """Build, deploy twice (and the k3s phases), tear down; the timings for one lab size."""
    spec = load_spec(inventory)
    cache_warm = (cache_dir() / f"base-{base_image_key(spec.ssh_user)}").exists()
    with exclusive():  # the whole measurement owns the lab
        lifecycle.down()
        start = time.monotonic()
        lifecycle.up(inventory)
        build = time.monotonic() - start
        row: dict[str, Any] = {"machines": size, "image_cache": "warm" if cache_warm else "cold",
                               "lab_build_s": round(build, 2)}  # fmt: skip
        try:
            result = cycle.converge_and_check_idempotence(inventory)
            row.update({
                "first_deploy_s": round(result.converge.seconds, 2),
                "noop_rerun_s": round(result.noop.seconds, 2),
                "first_deploy_changes": result.converge.totals.get("success", 0),
                "noop_rerun_changes": result.noop.totals.get("success", 0),
                "operations": result.noop.totals.get("hosts", 0),
            })
            row.update(measure_k3s(inventory))
        except LabError as exc:  # the deploy failed at this size: report it, measure the rest
            print(f"bench lab: {size} machines: {exc}", file=sys.stderr)
            return {**row, "error": str(exc)[:2000]}
        finally:
            lifecycle.down()
    return row


def measure_k3s(inventory: Path) -> dict[str, Any]:
    """On a converged lab: the no-op re-run without k3s, then a k3s setting changed on every node."""
    data = yaml.safe_load(inventory.read_text())
    if not data.get("k3s"):
        return {}
    inv_py = cycle.pyinfra_inventory_for(inventory)
    without = cycle.deploy(inv_py, deploy_without_k3s(inventory.with_name("deploy_without_k3s.py")))
    if not without.ok or without.totals.get("success", 0):
        raise LabError(f"no-op re-run without k3s changed {without.changed} or failed:\n{without.stderr_tail}")
    variant = inventory.with_name(f"{inventory.stem}-k3s-changed.yml")
    variant.write_text(yaml.safe_dump(with_every_node_setting(data), sort_keys=False))
    start = time.monotonic()
    rollout = cycle.deploy(cycle.pyinfra_inventory_for(variant))
    if not rollout.ok:
        raise LabError(f"k3s rollout deploy failed: {rollout.failed_hosts}\n{rollout.stderr_tail}")
    changed = load_inventory(variant, group_defaults())
    ready = wait_every_node_ready(changed, start)
    return {
        "noop_rerun_without_k3s_s": round(without.seconds, 2),
        "k3s_nodes": len(k3s_hosts(changed)),
        "k3s_rollout_deploy_s": round(rollout.seconds, 2),
        "k3s_rollout_to_ready_s": round(ready, 2),
        "k3s_rollout_changes": rollout.totals.get("success", 0),
    }


def run(args: argparse.Namespace) -> int:
    """Measure every size, write JSON, print a side-by-side table."""
    try:
        return _run(args)
    except LabError as exc:
        print(f"hearth bench lab: error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    base = yaml.safe_load(args.inventory.read_text())
    results = []
    with tempfile.TemporaryDirectory(prefix="hearth-bench-lab-") as tmp:
        for size in args.sizes:
            inv = Path(tmp) / f"lab{size}.yml"
            inv.write_text(yaml.safe_dump(scaled_inventory(base, size), sort_keys=False))
            cycle.pyinfra_inventory_for(inv)
            print(f"==> bench lab: {size} machines", flush=True)
            results.append(measure(inv, size))
    report = {
        "benchmark": "lab",
        "host": {"cpus": _cpus(), "kernel": platform.release(), "python": platform.python_version()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    print(f"written: {args.out}")
    return 1 if any("error" in r for r in results) else 0


def table(results: list[dict[str, Any]]) -> str:
    """Sizes side by side, one metric a row."""
    rows = [("machines", "machines", ""), ("image cache", "image_cache", ""),
            ("lab build", "lab_build_s", "s"), ("first deploy", "first_deploy_s", "s"),
            ("no-op re-run", "noop_rerun_s", "s"), ("changes on re-run", "noop_rerun_changes", ""),
            ("no-op without k3s", "noop_rerun_without_k3s_s", "s"), ("k3s nodes", "k3s_nodes", ""),
            ("k3s change: deploy", "k3s_rollout_deploy_s", "s"),
            ("k3s change: Ready", "k3s_rollout_to_ready_s", "s")]  # fmt: skip
    lines = []
    for label, key, unit in rows:
        cells = "".join(f"{_cell(r, key, unit):>14}" for r in results)
        lines.append(f"{label:<20}{cells}")
    return "\n".join(lines)


def _cell(result: dict[str, Any], key: str, unit: str) -> str:
    """The figure with its unit; FAILED where the size failed before it, - where it does not apply."""
    if key in result:
        return f"{result[key]}{unit}"
    return "FAILED" if "error" in result else "-"


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
