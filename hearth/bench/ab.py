"""Two (or more) versions of hearth's gateway side by side with the bare relay.

``python -m hearth.bench.ab --concurrency 16 --rounds 60 before=DIR after=DIR``

Each ``NAME=DIR`` is a directory holding a ``hearth`` package (e.g. ``git archive REV
hearth | tar -x -C DIR``); that version runs as ``hearth gateway serve`` with ``DIR`` first
on ``PYTHONPATH``, configured as in ``hearth bench gateway``. The mock upstream, the bare
relay and every version start once, pinned as in that bench (load generator + mock on one
CPU, every proxy on the other), and each round visits the paths in a shuffled order, so a
shared machine's load hits every path alike. ``--concurrency C`` > 0: rounds of C
concurrent streams, time to first ``data:`` event added vs direct; 0: one non-streaming
request per path per round. CPU per stream (or request) comes from
``/proc/<pid>/schedstat`` (nanoseconds, not clock ticks). ``--preupstream``: also each
proxy's CPU per request before its upstream call (median microseconds of thread time,
:mod:`hearth.bench.preupstream`). ``--out`` appends one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import gateway_procs as gp
from . import preupstream as preup
from .loadgen import chat_body, new_session, one_request, percentile, stream_once
from .process import run_fast


def cpu_s(proc: gp.Proc) -> float:
    """CPU seconds on a core so far (schedstat: nanosecond resolution)."""
    return int(Path(f"/proc/{proc.pid}/schedstat").read_text().split()[0]) / 1e9


def syscalls(proc: gp.Proc) -> tuple[int, int]:
    """Read- and write-type system calls so far (``/proc/<pid>/io`` syscr, syscw): a
    count, so unlike CPU time it does not move with the machine's load."""
    f = dict(line.split(": ") for line in Path(f"/proc/{proc.pid}/io").read_text().splitlines())
    return int(f["syscr"]), int(f["syscw"])


@contextlib.contextmanager
def _env(**values: str | None) -> Iterator[None]:
    """Set (None: leave alone) environment variables for the processes started inside."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _proxy_env(wd: Path, label: str, src: str | None) -> dict[str, str | None]:
    """The environment of a proxy: for a hearth version its directory first on
    ``PYTHONPATH``; with the pre-upstream probe (``wd/probe`` exists) that first."""
    probe = wd / "probe"
    if not probe.is_dir():
        return {"PYTHONPATH": src}
    path = os.pathsep.join(p for p in (str(probe), src) if p)
    return {"PYTHONPATH": path, "HEARTH_PREUP_LABEL": label,
            "HEARTH_PREUP_OUT": str(wd / "preup")}


async def run(concurrency: int, rounds: int, versions: list[tuple[str, str]],
              preupstream: bool = False) -> dict[str, Any]:
    """Start everything, measure, stop; the figures per path."""
    wd = Path(tempfile.mkdtemp(prefix="hearth-bench-ab-"))
    if preupstream:
        (wd / "probe").mkdir()
        (wd / "preup").mkdir()
        shutil.copy(preup.__file__, wd / "probe" / "sitecustomize.py")
    lg, px = gp.pin_loadgen()
    mock = await gp.start_mock(wd, lg)
    procs: dict[str, gp.Proc] = {}
    pre: dict[str, float] = {}
    try:
        with _env(**_proxy_env(wd, "bare", None)):
            procs["bare"] = await gp.start_python(
                "bare", "hearth.bench.relay", ["--upstream", mock.url, "--client", "aiohttp"],
                wd, px, "/healthz")
        for name, src in versions:
            with _env(**_proxy_env(wd, name, src)):
                procs[name] = await gp.start_hearth(mock.url, wd, px, name=name)
        urls = {"direct": mock.url, **{k: p.url for k, p in procs.items()}}
        lat: dict[str, list[float]] = {p: [] for p in urls}
        stream = concurrency > 0
        async with new_session() as s:
            body = chat_body(stream=stream)

            async def batch(p: str) -> list[float]:
                u = urls[p] + "/v1/chat/completions"
                if stream:
                    res = await asyncio.gather(*(stream_once(s, u, body)
                                                 for _ in range(concurrency)))
                    return [x.ttft_ms for x in res]
                return [await one_request(s, u, body)]

            for p in urls:  # warm-up: connections, caches
                for _ in range(5 if stream else 100):
                    await batch(p)
            order, rng = list(urls), random.Random(2)
            cpu0 = {p: cpu_s(procs[p]) for p in procs}
            io0 = {p: syscalls(procs[p]) for p in procs}
            for _ in range(rounds):
                rng.shuffle(order)
                for p in order:
                    lat[p].extend(await batch(p))
            per = rounds * max(1, concurrency)
            cpu = {p: (cpu_s(procs[p]) - cpu0[p]) / per * 1000 for p in procs}
            io = {p: [(b - a) / per for a, b in zip(io0[p], syscalls(procs[p]), strict=True)] for p in procs}
    finally:
        for proc in [*procs.values(), mock]:
            proc.stop()
        if preupstream:
            pre = preup.p50_us(wd / "preup")
        shutil.rmtree(wd, ignore_errors=True)  # generated configs and process logs
    d50 = percentile(lat["direct"], 50)
    d90 = percentile(lat["direct"], 90)
    out: dict[str, Any] = {"concurrency": concurrency, "rounds": rounds,
                           "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0]),
                           "direct_p50_ms": d50}
    for p in procs:
        out[p] = {"added_p50_ms": percentile(lat[p], 50) - d50,
                  "added_p90_ms": percentile(lat[p], 90) - d90,
                  "cpu_ms": cpu[p], "cpu_ratio_vs_bare": cpu[p] / cpu["bare"],
                  "reads": io[p][0], "writes": io[p][1]}
        if p in pre:
            out[p]["preupstream_cpu_us_p50"] = pre[p]
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse, run, print, append ``--out``."""
    ap = argparse.ArgumentParser(prog="python -m hearth.bench.ab")
    ap.add_argument("--concurrency", type=int, default=16,
                    help="concurrent streams per round (0: non-streaming, one at a time)")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--out", default=None, help="append the figures here (JSON lines)")
    ap.add_argument("--preupstream", action="store_true",
                    help="also CPU per request before the upstream call (hearth.bench.preupstream)")
    ap.add_argument("versions", nargs="+", metavar="NAME=DIR")
    a = ap.parse_args(argv)
    versions = [tuple(v.split("=", 1)) for v in a.versions]
    if any(len(v) != 2 or not (Path(v[1]) / "hearth").is_dir() for v in versions):
        ap.error("each version is NAME=DIR with DIR/hearth a hearth package")
    res = run_fast(run(a.concurrency, a.rounds, versions, a.preupstream))  # type: ignore[arg-type]
    what = "TTFT" if a.concurrency else "latency"
    unit = "stream" if a.concurrency else "request"
    print(f"c={a.concurrency} rounds={a.rounds} load {res['loadavg_1m']} "
          f"direct {what} p50 {res['direct_p50_ms']:.2f} ms")
    for p in ["bare", *(n for n, _ in versions)]:
        r = res[p]
        print(f"  {p:10} {what} added p50 {r['added_p50_ms']:8.2f} p90 {r['added_p90_ms']:8.2f}"
              f"  CPU ms/{unit} {r['cpu_ms']:.3f} ({r['cpu_ratio_vs_bare']:.3f}x bare)"
              + (f"  read/write calls/{unit} {r['reads']:.2f} / {r['writes']:.2f}"
                 if r["reads"] or r["writes"] else "")
              + (f"  pre-upstream CPU p50 {r['preupstream_cpu_us_p50']:.1f} us"
                 if "preupstream_cpu_us_p50" in r else ""))
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
