"""What the bench's helper processes (mock upstream, relays) share."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def until_terminated() -> None:
    """Return when SIGTERM or SIGINT arrives (a helper process's whole life)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
