"""Lab: run `hearth bench wake` inside a lab session (a benchmark, not a timed test).

Skipped unless ``HEARTH_BENCH_WAKE`` names the JSON file to write, e.g.

    HEARTH_BENCH_WAKE=/tmp/wake.json /work/wt/private-lab N inventory/lab.yml -s -k bench_wake

It asserts only what is not a timing: the box left idle suspended itself and the next
request woke it with one magic packet, every round answered, one magic packet for the
burst of concurrent requests and every one of them answered (up to the gateway's hold
bound for one wake, the inventory's ``sleep.max_held_requests``). The figures are printed
(``-s``) and written; docs/benchmarks.md records them with this command. The sleeper is
left awake and known awake to the gateway (the benchmark ends on a woken burst), with
the inventory's own idle minutes deployed back to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab


def test_bench_wake(lab: Any) -> None:
    out = os.environ.get("HEARTH_BENCH_WAKE")
    if not out:
        pytest.skip("a benchmark: set HEARTH_BENCH_WAKE=<file.json> to run it")
    if not lab.local:
        pytest.skip("puts a lab machine to sleep")
    rounds = os.environ.get("HEARTH_BENCH_WAKE_ROUNDS", "5")
    argv = [str(Path(sys.executable).with_name("hearth")), "bench", "wake", "--inventory", str(lab.inventory),
            "--out", out, "--rounds", rounds]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    print("\n" + done.stdout + done.stderr[-3000:])
    assert done.returncode == 0
    result = json.loads(Path(out).read_text())
    assert len(result["rounds"]) == int(rounds)
    idle = result["idle"]
    assert idle is not None and idle["magic_packets"] == 1, idle
    burst = result["burst"]
    assert burst["magic_packets"] == 1, burst
    # every request held for the wake (up to the gateway's hold bound) is answered
    assert burst["ok"] == min(burst["requests"], burst["hold_bound"]), burst
    assert sum(burst["statuses"].values()) == burst["requests"], burst
