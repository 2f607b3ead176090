"""One open-loop step spread over worker processes, merged exactly (``--loadgen-procs``).

Each worker (``python -m hearth.bench.rawgen_procs``, started once and reused for
every step) runs :func:`hearth.bench.rawgen.raw_open_loop` on its own connections at
``rate / N``; the workers' send times interleave (worker ``i`` sends the ``k``-th of
its requests at ``start + (k * N + i) / rate``, ``start`` a shared
:func:`time.monotonic` time), so together they fire exactly the one-process schedule.
Latencies are still measured from each request's intended send time (no coordinated
omission). The parent merges the workers' results: counts and errors summed,
latencies concatenated. A worker that dies or does not answer is a
:class:`WorkerDied` error naming it, never a silently smaller result.

Workers inherit the parent's CPU affinity: started from the gateway bench they share
the load generator's CPU, never the proxy's.

Protocol: one JSON line per step on the worker's stdin, one JSON line back on its
stdout (``ready`` once at start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from .loadgen import OpenLoopResult
from .rawgen import raw_open_loop

START_DELAY_S = 0.1  # from handing out a step to its first send: every worker has it by then


class WorkerDied(RuntimeError):
    """A load generator worker exited or stopped answering."""


@dataclass
class StepResult(OpenLoopResult):
    """An open-loop step's merged result, plus the workers' CPU time over it."""

    cpu_s: float = 0.0
    procs: int = 1


def merge(rate: float, parts: list[dict[str, Any]]) -> StepResult:
    """The workers' results of one step as one: sums, latencies concatenated."""
    res = StepResult(rate, procs=len(parts))
    for p in parts:
        res.sent += p["sent"]
        res.ok += p["ok"]
        res.errors += p["errors"]
        res.latencies_ms.extend(p["latencies_ms"])
        res.wall_s = max(res.wall_s, p["wall_s"])
        res.cpu_s += p["cpu_s"]
    return res


def shares(n: int, procs: int) -> list[int]:
    """``n`` requests split over ``procs`` workers (the first ones take the remainder)."""
    return [n // procs + (1 if i < n % procs else 0) for i in range(procs)]


def _child_env() -> dict[str, str]:
    """This environment with this checkout's ``hearth`` on ``PYTHONPATH``."""
    from .gateway_procs import hearth_root

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), hearth_root()) if p)
    return env


class GenPool:
    """``procs`` load generator worker processes (an async context manager)."""

    def __init__(self, procs: int) -> None:
        if procs < 1:
            raise ValueError("a worker pool needs at least one process")
        self.procs = procs
        self.workers: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> GenPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the workers and wait until each is ready."""
        for _ in range(self.procs):
            self.workers.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hearth.bench.rawgen_procs", env=_child_env(),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, limit=2**30))
        for i in range(self.procs):
            if await self._line(i, 60.0) != {"ready": True}:
                raise WorkerDied(f"load generator worker {i}: unexpected start-up answer")

    async def step(self, url: str, body: bytes, rate: float, duration_s: float,
                   timeout_s: float = 5.0) -> StepResult:
        """One open-loop step of ``rate`` requests/s over every worker, merged."""
        n = max(1, int(rate * duration_s))
        start = time.monotonic() + START_DELAY_S
        for i, count in enumerate(shares(n, self.procs)):
            job = {"url": url, "body": body.decode("latin-1"), "rate": rate / self.procs,
                   "start_at": start + i / rate, "count": count, "timeout_s": timeout_s}
            self._send(i, job)
        wait = START_DELAY_S + duration_s + timeout_s + 10.0
        parts = await asyncio.gather(*(self._line(i, wait) for i in range(self.procs)))
        return merge(rate, list(parts))

    def _send(self, i: int, job: dict[str, Any]) -> None:
        w = self.workers[i]
        if w.returncode is not None or w.stdin is None:
            raise WorkerDied(f"load generator worker {i} (pid {w.pid}) exited "
                             f"with code {w.returncode}")
        w.stdin.write(json.dumps(job).encode() + b"\n")

    async def _line(self, i: int, timeout_s: float) -> Any:
        """Worker ``i``'s next JSON line; :class:`WorkerDied` if it ends or stalls."""
        w = self.workers[i]
        assert w.stdout is not None
        try:
            line = await asyncio.wait_for(w.stdout.readline(), timeout_s)
        except TimeoutError:
            raise WorkerDied(f"load generator worker {i} (pid {w.pid}) did not answer "
                             f"within {timeout_s:.0f} s") from None
        if not line:
            raise WorkerDied(await self._death(i))
        return json.loads(line)

    async def _death(self, i: int) -> str:
        """What is known of worker ``i``'s end: exit code and the tail of its stderr."""
        w = self.workers[i]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(w.wait(), 5.0)
        err = b""
        if w.stderr is not None:
            with contextlib.suppress(TimeoutError):
                err = await asyncio.wait_for(w.stderr.read(), 1.0)
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        return (f"load generator worker {i} (pid {w.pid}) exited with code {w.returncode}"
                + (": " + " | ".join(tail) if tail else ""))

    async def close(self) -> None:
        """Stop every worker (end of input, then SIGKILL after 5 s)."""
        for w in self.workers:
            if w.stdin is not None:
                with contextlib.suppress(OSError):
                    w.stdin.close()
        for w in self.workers:
            try:
                await asyncio.wait_for(w.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    w.kill()
                await w.wait()
        self.workers.clear()


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop is installed, else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


def run_job(loop: asyncio.AbstractEventLoop, job: dict[str, Any]) -> dict[str, Any]:
    """Run one step as a worker on ``loop``; its result with the CPU time it took."""
    c0 = time.process_time()
    res = loop.run_until_complete(raw_open_loop(
        job["url"], job["body"].encode("latin-1"), job["rate"], 0.0,
        timeout_s=job["timeout_s"], start_at=job["start_at"], count=job["count"]))
    return {"sent": res.sent, "ok": res.ok, "errors": res.errors,
            "latencies_ms": res.latencies_ms, "wall_s": res.wall_s,
            "cpu_s": time.process_time() - c0}


def worker_main() -> int:
    """A worker's life: ``ready``, then one result line per job line until end of input
    (every step on one event loop, not a new one each)."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    gc.freeze()  # start-up objects: never scanned again
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        out.write(json.dumps(run_job(loop, json.loads(line))) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
