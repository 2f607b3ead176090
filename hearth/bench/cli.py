"""The `hearth bench` command group.

Each benchmark is a module listed in ``BENCH_MODULES`` exposing
``register(bench_subparsers)``; a module that is not there (yet) is skipped, so a
new benchmark only needs its module and one line here.
"""

from __future__ import annotations

import argparse

from hearth.cli import register_modules

BENCH_MODULES = (
    "hearth.bench.lab",  # bench lab: lab build, first deploy, no-op re-run at 4 and 12 machines
    "hearth.bench.gateway",  # bench gateway
    "hearth.bench.wake",  # bench wake: gateway overhead on top of a sleeping box's wake-up (lab)
    "hearth.bench.ssh",  # bench ssh: one SSH command, Nagle on vs off (a deployed lab)
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench` and the sub-command of every benchmark module present."""
    bench = subparsers.add_parser("bench", help="benchmarks (write JSON, print a summary)")
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    register_modules(sub, BENCH_MODULES)
