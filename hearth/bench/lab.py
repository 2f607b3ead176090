"""`hearth bench lab`: lab build time, first deploy, no-op re-run, at 4 and 12 machines.

The 12-machine lab is the lab inventory scaled: extra k3s agents (no GPU) written
to a temporary inventory. Each size runs from nothing (`lab down` first): `lab up`
with the image cache as it is (the JSON says whether it was warm), then the
converge -> idempotence cycle. The lab is left down afterwards.
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

from hearth.lab import cycle, lifecycle
from hearth.lab.image import image_key
from hearth.lab.sh import LabError
from hearth.lab.spec import load_spec
from hearth.lab.state import exclusive, lab_root

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
    """Build, deploy twice, tear down; the timings for one lab size."""
    spec = load_spec(inventory)
    cache_warm = (lab_root() / "cache" / f"base-{image_key(spec.ssh_user)}").exists()
    with exclusive():  # the whole measurement owns the lab
        lifecycle.down()
        start = time.monotonic()
        lifecycle.up(inventory)
        build = time.monotonic() - start
        row: dict[str, Any] = {"machines": size, "image_cache": "warm" if cache_warm else "cold",
                               "lab_build_s": round(build, 2)}  # fmt: skip
        try:
            result = cycle.converge_and_check_idempotence(inventory)
        except LabError as exc:  # the deploy failed at this size: report it, measure the rest
            print(f"bench lab: {size} machines: {exc}", file=sys.stderr)
            return {**row, "error": str(exc)[:2000]}
        finally:
            lifecycle.down()
    return {
        **row,
        "first_deploy_s": round(result.converge.seconds, 2),
        "noop_rerun_s": round(result.noop.seconds, 2),
        "first_deploy_changes": result.converge.totals.get("success", 0),
        "noop_rerun_changes": result.noop.totals.get("success", 0),
        "operations": result.noop.totals.get("hosts", 0),
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
            ("no-op re-run", "noop_rerun_s", "s"), ("changes on re-run", "noop_rerun_changes", "")]  # fmt: skip
    lines = []
    for label, key, unit in rows:
        cells = "".join(
            f"{str(r[key]) + unit if key in r else 'FAILED':>14}" for r in results
        )
        lines.append(f"{label:<20}{cells}")
    return "\n".join(lines)


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
