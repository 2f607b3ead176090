"""The `hearth` command line.

Each subsystem owns its sub-commands: a module listed in ``SUBCOMMAND_MODULES``
exposes ``register(subparsers)`` which adds its parser(s) and sets ``func`` on
them. ``func(args)`` returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMAND_MODULES = (
    "hearth.commands",  # plan, render
    "hearth.planner.describe",  # models describe
    "hearth.kubeconfig",  # the k3s admin kubeconfig
    "hearth.wake",  # wake the sleeping hosts before a deploy
    "hearth.status",  # the cluster on one screen
    "hearth.windows_cli",  # windows bootstrap (first contact with a Windows box)
    "hearth.hostkey",  # hostkey check/accept (a changed SSH host key, explicitly)
    "hearth.lab.cli",  # lab up/down/status/sleep/wake
    "hearth.gateway.cli",  # gateway serve
    "hearth.client_cli",  # client add/list (devices on the overlay)
    "hearth.cloud_cli",  # cloud check (aliases against the providers' live lists)
    "hearth.bench.cli",  # bench lab/gateway
)


def register_modules(subparsers: argparse._SubParsersAction, names: Sequence[str]) -> None:
    """Let each module present in ``names`` add its sub-commands (absent ones are skipped)."""
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module
                raise
            continue
        module.register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Provision a home-lab AI cluster from one inventory.",
    )
    register_modules(parser.add_subparsers(dest="command", metavar="COMMAND", required=True), SUBCOMMAND_MODULES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
