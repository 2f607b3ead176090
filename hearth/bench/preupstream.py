"""CPU a proxy spends on a request before its upstream call (``hearth.bench.ab --preupstream``).

This file is self-contained: ``hearth.bench.ab`` copies it as ``sitecustomize.py`` into a
directory put first on the ``PYTHONPATH`` of the relay and of every hearth version it
starts, so it works for a version that predates it. In a process started with
``HEARTH_PREUP_LABEL`` and ``HEARTH_PREUP_OUT`` set, :func:`install` wraps aiohttp's
``RequestHandler._handle_request`` (where the task serving one request starts) and
``ClientSession._request``: the thread's CPU time (``time.thread_time_ns``) between the two,
in the same task, is that request's pre-upstream CPU: routing, parsing, bookkeeping, and
aiohttp's own dispatch and body read, which the bare relay pays too. One line per request
(``cpu_ns wall_ns``) goes to ``<OUT>/<LABEL>-<pid>.txt``. Thread time leaves out other
processes (a loaded machine), and the handler reaches the upstream call without yielding
(the figure's wall time matches its CPU time), so no other request's work is counted.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import time
from pathlib import Path
from typing import Any


def install() -> None:
    """Wrap aiohttp's handler start and client request (only when both variables are set)."""
    label, out = os.environ.get("HEARTH_PREUP_LABEL"), os.environ.get("HEARTH_PREUP_OUT")
    if not label or not out:
        return
    import aiohttp.client as client
    import aiohttp.web_protocol as web_protocol

    path = Path(out) / f"{label}-{os.getpid()}.txt"
    start: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
        "hearth_preup_start", default=None)
    rows: list[str] = []

    def flush() -> None:
        if rows:
            with path.open("a") as f:
                f.write("".join(rows))
            rows.clear()

    handle_request, request = web_protocol.RequestHandler._handle_request, client.ClientSession._request

    async def timed_handle_request(self: Any, *args: Any, **kw: Any) -> Any:
        start.set((time.thread_time_ns(), time.perf_counter_ns()))
        return await handle_request(self, *args, **kw)

    def timed_request(self: Any, *args: Any, **kw: Any) -> Any:
        t = start.get()
        if t is not None:
            rows.append(f"{time.thread_time_ns() - t[0]} {time.perf_counter_ns() - t[1]}\n")
            start.set(None)
            if len(rows) >= 256:
                flush()
        return request(self, *args, **kw)

    atexit.register(flush)
    web_protocol.RequestHandler._handle_request = timed_handle_request  # type: ignore[method-assign]
    client.ClientSession._request = timed_request  # type: ignore[method-assign]


def p50_us(out: Path) -> dict[str, float]:
    """Per label: the median pre-upstream CPU (microseconds) of the requests recorded."""
    per: dict[str, list[int]] = {}
    for f in out.glob("*.txt"):
        label = f.name.rsplit("-", 1)[0]
        per.setdefault(label, []).extend(int(line.split()[0]) for line in f.read_text().splitlines())
    return {k: sorted(v)[len(v) // 2] / 1000 for k, v in per.items() if v}


if __name__ == "sitecustomize":
    install()
