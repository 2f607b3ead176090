"""`hearth gateway serve|check` sub-commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from . import gctune
from .config import ConfigError, load_config

log = logging.getLogger("hearth.gateway")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``gateway serve`` and ``gateway check``."""
    p = subparsers.add_parser("gateway", help="the OpenAI-compatible gateway")
    sub = p.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", required=True, help="policy file (YAML or JSON)")
    s.add_argument("--listen", action="append", help="HOST:PORT (overrides the config)")
    s.add_argument("--log-level", default="INFO")
    s.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="auto: uvloop when installed (it is a dependency), else asyncio's")
    s.set_defaults(func=_serve)
    c = sub.add_parser("check", help="validate a policy file and exit (0 = valid)")
    c.add_argument("--config", required=True)
    c.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from .state import Policy

    try:
        cfg = load_config(args.config)
        Policy.build(cfg)
    except ConfigError as exc:
        print(f"invalid gateway policy {args.config}:", file=sys.stderr)
        for e in exc.errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    print(f"{args.config}: ok ({len(cfg.upstreams)} upstreams, {len(cfg.routes)} routes, "
          f"{len(cfg.clients)} clients)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"invalid gateway policy: {exc}", file=sys.stderr)
        return 1
    return _run_loop(_run(cfg, args.config, args.listen), args.event_loop)


def _run_loop(main: Any, which: str) -> int:
    """Run ``main`` on uvloop (``auto`` when importable, or asked) or asyncio's loop."""
    if which != "asyncio":
        try:
            import uvloop
        except ImportError:
            if which == "uvloop":
                raise
        else:
            log.debug("event loop: uvloop %s", uvloop.__version__)
            return int(uvloop.run(main))
    return int(asyncio.run(main))


async def _run(cfg, path: str, listen: list[str] | None) -> int:  # type: ignore[no-untyped-def]
    from .server import start

    runner, state, bound = await start(cfg, path, listen)
    for host, port in bound:
        log.info("hearth gateway listening on %s:%d", host, port)
    gctune.settle()  # this process serves from here on: its start-up heap is frozen
    state.after_reload.append(gctune.settle)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    def _hup() -> None:
        async def go() -> None:
            try:
                await state.reload()
            except ConfigError as exc:
                log.error("SIGHUP reload rejected, previous policy kept: %s", exc)
        task = loop.create_task(go())
        pending.add(task)
        task.add_done_callback(pending.discard)

    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, _hup)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0
