"""`hearth plan` and `hearth render`: read the inventory, touch no host."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from hearth.configs import ConfigFile
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, InventoryError, load_inventory
from hearth.plan import plan_text

# Concerns whose files a deploy writes; each module exposes
# host_files(inv, host_name, facts=None) -> list[ConfigFile].
CONCERNS = (
    "base", "overlay", "firewall", "nvidia", "k3s", "wol", "ollama", "vllm", "recover_cuda", "gateway",
    "tunnel", "windows",
    "telemetry", "heal", "monitoring", "home_assistant", "sleep", "gateway_service",
)


def inventory_path(value: str) -> Path:
    """Accept the YAML file or its pyinfra twin (inventory/lab.py -> inventory/lab.yml)."""
    path = Path(value)
    return path.with_suffix(".yml") if path.suffix == ".py" else path


def load_or_report(value: str) -> Inventory | None:
    try:
        return load_inventory(inventory_path(value), group_defaults())
    except InventoryError as exc:
        print(f"hearth: invalid inventory ({len(exc.lines)} problems):", file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        return None


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """Every config file the deploy writes on one host, concern by concern."""
    files: list[ConfigFile] = []
    for concern in CONCERNS:
        try:
            module = importlib.import_module(f"hearth.configs.{concern}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hearth.configs.{concern}":
                raise
            continue
        files.extend(module.host_files(inv, name, facts))
    return files


def cmd_plan(args: argparse.Namespace) -> int:
    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    sys.stdout.write(plan_text(inv))
    if getattr(args, "facts", False):
        from hearth.plan_facts import facts_text, gather

        text, refuse = facts_text(inv, gather(inv))
        sys.stdout.write("\n" + text)
        return 1 if refuse else 0
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    out = Path(args.out)
    count = 0
    for name in inv.hosts:
        for config in host_files(inv, name):
            # A Windows path (C:\ProgramData\...) lands under <host>/C/ProgramData/...
            target = out / name / config.dest.replace("\\", "/").replace(":", "").lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(config.render())
            count += 1
    print(f"wrote {count} files for {len(inv.hosts)} hosts under {out}/<host>/")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    plan = subparsers.add_parser("plan", help="validate an inventory and print the plan")
    plan.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    plan.add_argument("--facts", action="store_true",
                      help="also read every Linux host's hardware over SSH (read-only) and show drift + re-plan")
    plan.set_defaults(func=cmd_plan)
    render = subparsers.add_parser("render", help="write every config file the deploy would write")
    render.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    render.add_argument("--out", required=True, help="folder to write <host>/<path> files into")
    render.set_defaults(func=cmd_render)
