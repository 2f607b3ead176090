"""Micro-benchmarks behind issue 17's "dependencies made for speed" decisions.

``python -m hearth.bench.micro`` prints, best of 3 runs each:

- the hot path's hand-rolled :class:`hearth.gateway.proxy.Deadline` against
  ``asyncio.timeout`` (enter + exit, microseconds), on asyncio's loop and on uvloop;
- parsing a request body with ``json`` (stdlib), ``orjson`` and ``msgspec`` (each only
  if installed), for the bench's 86-byte body and for 4 KiB, 100 KiB and 1 MiB chats.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from hearth.gateway.proxy import Deadline

N_DEADLINE = 100_000


async def _deadlines() -> dict[str, float]:
    async def with_deadline() -> None:
        for _ in range(N_DEADLINE):
            with Deadline(60):
                pass

    async def with_timeout() -> None:
        for _ in range(N_DEADLINE):
            async with asyncio.timeout(60):
                pass

    best: dict[str, float] = {}
    for name, fn in (("Deadline", with_deadline), ("asyncio.timeout", with_timeout)) * 3:
        t = time.perf_counter()
        await fn()
        us = (time.perf_counter() - t) / N_DEADLINE * 1e6
        best[name] = min(best.get(name, 1e9), us)
    return best


def _chat(n_msgs: int, chars: int) -> bytes:
    return json.dumps({"model": "bench-model", "stream": False, "messages": [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "word " * (chars // 5)}
        for i in range(n_msgs)]}).encode()


def _parsers() -> dict[str, Callable[[bytes], Any]]:
    out: dict[str, Callable[[bytes], Any]] = {"json": json.loads}
    try:
        import orjson

        out["orjson"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        out["msgspec"] = msgspec.json.Decoder().decode
    except ImportError:
        pass
    return out


def main() -> int:
    """Print the figures."""
    print("Deadline vs asyncio.timeout, enter+exit (us, best of 3 x 100000):")
    print(f"  asyncio loop: {_fmt(asyncio.run(_deadlines()))}")
    try:
        import uvloop

        print(f"  uvloop:       {_fmt(uvloop.run(_deadlines()))}")
    except ImportError:
        print("  uvloop:       not installed")
    bodies = [("bench body", b'{"model":"bench-model","stream":false,"messages":[{"role":"user",'
                             b'"content":"say ok"}]}'),
              ("4 KiB chat", _chat(4, 1000)), ("100 KiB chat", _chat(40, 2500)),
              ("1 MiB chat", _chat(100, 10000))]
    print("Request body parse (us per body, best of 3):")
    for label, raw in bodies:
        res = {}
        for name, fn in _parsers().items():
            n = max(20, 2_000_000 // len(raw))
            best = 1e9
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(n):
                    fn(raw)
                best = min(best, (time.perf_counter() - t) / n * 1e6)
            res[name] = best
        print(f"  {label} ({len(raw)} B): {_fmt(res)}")
    return 0


def _fmt(d: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.2f}" for k, v in d.items())


if __name__ == "__main__":
    sys.exit(main())
