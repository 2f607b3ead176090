"""`python -m hearth.gateway serve|check --config FILE`: the gateway on its own.

The gateway host runs only this package (roles/gateway installs hearth.gateway and
its pinned dependencies, nothing else), so it has its own entry point.
"""

from __future__ import annotations

import argparse
import sys

from hearth.gateway.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hearth.gateway")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["gateway", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
