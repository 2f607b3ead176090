"""What the bench's helper processes (mock upstream, relays) share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any


async def until_terminated() -> None:
    """Return when SIGTERM or SIGINT arrives (a helper process's whole life)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def run_fast(main: Awaitable[Any]) -> Any:
    """Run ``main`` on uvloop when it is installed, else on asyncio's own loop.

    For the bench's measuring side (load generator, mock upstream): the cheaper its
    loop, the later it becomes the limit. The relays stay on asyncio's loop.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)  # type: ignore[arg-type]
    return uvloop.run(main)  # type: ignore[arg-type]


def run_pinned(main: Callable[[], Awaitable[None]], cpu: int | None,
               fast_loop: bool = False) -> int:
    """Pin this process to ``cpu`` (when given, so it does not share a core with the
    load generator) and run ``main`` to its end (on :func:`run_fast` if ``fast_loop``)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    if fast_loop:
        run_fast(main())
    else:
        asyncio.run(main())  # type: ignore[arg-type]
    return 0
