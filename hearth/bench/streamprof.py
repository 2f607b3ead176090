"""Where hearth's time goes while streams start at concurrency 16 or 64 (py-spy).

``python -m hearth.bench.streamprof [--concurrency 64] [--seconds 20] [--out prof.txt]``
starts the bench's mock upstream and ``hearth gateway serve`` (pinned like the gateway
bench), fires rounds of C concurrent streaming requests for the given time while
``py-spy record`` (a dev dependency) samples the gateway, and prints the share of the
gateway's samples by where they were taken: hearth's own code, JSON parsing, metrics,
aiohttp's client (the upstream request), aiohttp's server, the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import gateway_procs as gp
from .loadgen import chat_body, new_session, stream_once
from .process import run_fast

_CATEGORIES = (  # (label, test on (leaf frame, whole stack)), first match wins
    ("event loop (uvloop's C code)", lambda leaf, s: "Runner.run (asyncio/runners.py" in leaf),
    ("metrics (prometheus_client)", lambda leaf, s: "prometheus_client" in leaf),
    ("request JSON parse", lambda leaf, s: "json/" in leaf),
    ("hearth's own code", lambda leaf, s: "hearth/gateway" in leaf),
    ("aiohttp client: upstream request + response", lambda leaf, s: any(
        k in s for k in ("ClientSession._request", "ClientResponse", "client_proto",
                         "ClientRequest", "connector.py"))),
    ("aiohttp server: response write", lambda leaf, s: any(
        k in s for k in ("StreamResponse", "http_writer", "web_response"))),
    ("aiohttp server: body read", lambda leaf, s: "BaseRequest.read" in s),
    ("health probes", lambda leaf, s: "health.py" in s),
    ("aiohttp server: parse, dispatch, tasks", lambda leaf, s: True),
)


def categorise(raw: Path) -> list[tuple[str, float]]:
    """Shares of py-spy ``--format raw`` samples by category, largest first."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        label = next(lab for lab, test in _CATEGORIES if test(leaf, stack))
        counts[label] += int(n)
    total = sum(counts.values()) or 1
    return [(lab, 100 * n / total) for lab, n in counts.most_common()]


async def _run(concurrency: int, seconds: float, out: Path, rate: int) -> None:
    wd = Path(tempfile.mkdtemp(prefix="hearth-streamprof-"))
    lg, px = gp.pin_loadgen()
    mock = await gp.start_mock(wd, lg)
    hearth = await gp.start_hearth(mock.url, wd, px)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    prof: subprocess.Popen[bytes] | None = None
    rounds = 0
    try:
        url = hearth.url + "/v1/chat/completions"
        body = chat_body(stream=True)
        async with new_session() as s:
            await asyncio.gather(*(stream_once(s, url, body) for _ in range(concurrency)))
            prof = subprocess.Popen([spy, "record", "-r", str(rate), "-f", "raw", "-o", str(out),
                                     "--pid", str(hearth.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1)  # py-spy attached
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await asyncio.gather(*(stream_once(s, url, body) for _ in range(concurrency)))
                rounds += 1
        prof.send_signal(signal.SIGINT)
        prof.wait(30)
    finally:
        if prof is not None and prof.poll() is None:
            prof.kill()
        hearth.stop()
        mock.stop()
        shutil.rmtree(wd, ignore_errors=True)
    print(f"{rounds} rounds of {concurrency} concurrent streams in {seconds:g} s; "
          f"load average {Path('/proc/loadavg').read_text().split()[0]}; samples in {out}")
    for label, share in categorise(out):
        print(f"  {share:5.1f}%  {label}")


def main(argv: list[str] | None = None) -> int:
    """Run the profile and print the breakdown."""
    p = argparse.ArgumentParser(prog="python -m hearth.bench.streamprof")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--out", default="streamprof.txt", help="py-spy raw samples")
    a = p.parse_args(argv)
    run_fast(_run(a.concurrency, a.seconds, Path(a.out), a.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
