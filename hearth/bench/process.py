"""What the bench's helper processes (mock upstream, relays) share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable


async def until_terminated() -> None:
    """Return when SIGTERM or SIGINT arrives (a helper process's whole life)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def run_pinned(main: Callable[[], Awaitable[None]], cpu: int | None) -> int:
    """Pin this process to ``cpu`` (when given, so it does not share a core with the
    load generator) and run ``main`` to its end."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    asyncio.run(main())
    return 0
