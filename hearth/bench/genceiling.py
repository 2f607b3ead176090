"""The throughput generator's own ceiling: open-loop steps with 1 vs N generator processes.

``python -m hearth.bench.genceiling --rates 5000,8000 --procs 0,1,2,4 [--hearth]
[--baseline FILE]`` starts the gateway bench's mock upstream (and, with ``--hearth``,
hearth's gateway on the proxy's CPU), pins itself to the load generator's CPU like
``hearth bench gateway``, and at each rate runs one step per variant, interleaved:
``0`` is :func:`hearth.bench.rawgen.raw_open_loop` in this process, ``N`` >= 1 a
:class:`hearth.bench.rawgen_procs.GenPool` of N workers, ``base`` the
``raw_open_loop`` of ``--baseline`` (another version's ``rawgen.py``, e.g. from
``git show REV:hearth/bench/rawgen.py``), in this process. Each line: p50/p99 from
the intended send time, errors, and the CPU the generator and the mock spent per
request. Short targeted runs, not the bench (docs/benchmarks.md, issue 17 item 1).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from . import gateway_procs as gp
from .loadgen import OpenLoopResult, chat_body
from .process import run_fast
from .rawgen import raw_open_loop
from .rawgen_procs import GenPool

Step = Callable[[str, bytes, float, float], Awaitable[tuple[OpenLoopResult, float]]]


def in_process(fn: Callable[..., Awaitable[OpenLoopResult]]) -> Step:
    """A step by ``fn`` (a ``raw_open_loop``) in this process, with its CPU time."""
    async def step(url: str, body: bytes, rate: float, dur: float) -> tuple[OpenLoopResult, float]:
        c0 = time.process_time()
        res = await fn(url, body, rate, dur)
        return res, time.process_time() - c0
    return step


def pooled(pool: GenPool) -> Step:
    """A step by ``pool``'s workers, with their CPU time."""
    async def step(url: str, body: bytes, rate: float, dur: float) -> tuple[OpenLoopResult, float]:
        res = await pool.step(url, body, rate, dur)
        return res, res.cpu_s
    return step


def load_baseline(path: str) -> Callable[..., Awaitable[OpenLoopResult]]:
    """``raw_open_loop`` from another version's ``rawgen.py`` (as a ``hearth.bench`` module)."""
    spec = importlib.util.spec_from_file_location("hearth.bench._rawgen_baseline", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.raw_open_loop  # type: ignore[no-any-return]


async def variants(args: argparse.Namespace, pools: list[GenPool]) -> dict[str, Step]:
    """The generators to compare, by name (pools started and added to ``pools``)."""
    out: dict[str, Step] = {}
    for v in args.procs.split(","):
        if v == "base":
            out["base"] = in_process(load_baseline(args.baseline))
        elif int(v) == 0:
            out["0"] = in_process(raw_open_loop)
        else:
            pools.append(GenPool(int(v)))
            await pools[-1].start()
            out[v] = pooled(pools[-1])
    return out


async def measure(args: argparse.Namespace) -> None:
    """Start the mock (and hearth), run every rate x variant x path, print a line each."""
    wd = Path(tempfile.mkdtemp(prefix="hearth-genceiling-"))
    lg, px = gp.pin_loadgen()
    mock = await gp.start_mock(wd, lg)
    procs = [mock]
    pools: list[GenPool] = []
    try:
        urls = {"direct": mock.url}
        if args.hearth:
            procs.append(await gp.start_hearth(mock.url, wd, px))
            urls["hearth"] = procs[-1].url
        gens = await variants(args, pools)
        for rate in (float(r) for r in args.rates.split(",")):
            for path, base in urls.items():
                for name, step in gens.items():
                    await one(step, name, path, base + "/v1/chat/completions", rate, args.step_s, mock)
    finally:
        for pool in pools:
            await pool.close()
        for p in procs:
            p.stop()


async def one(step: Step, name: str, path: str, url: str, rate: float, dur: float,
              mock: gp.Proc) -> None:
    """One step, printed."""
    m0 = mock.cpu_s()
    res, cpu = await step(url, chat_body(), rate, dur)
    mock_us = 1e6 * (mock.cpu_s() - m0) / res.sent
    print(f"rate {rate:6.0f}/s  {path:6}  procs {name:>4}  ok {res.ok:6d}  err {res.errors:5d}  "
          f"p50 {res.p50:8.2f}  p99 {res.p99:8.2f} ms  generator {1e6 * cpu / res.sent:6.1f} "
          f"us/req  mock {mock_us:6.1f} us/req", flush=True)
    await asyncio.sleep(0.3)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m hearth.bench.genceiling")
    p.add_argument("--rates", default="3000,5000,6300,8000,10000")
    p.add_argument("--procs", default="0,1,2,4", help="variants: N processes (0: in this one), base")
    p.add_argument("--baseline", help="another version's rawgen.py (variant base)")
    p.add_argument("--step-s", type=float, default=2.0)
    p.add_argument("--hearth", action="store_true", help="also step through hearth's gateway")
    run_fast(measure(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
