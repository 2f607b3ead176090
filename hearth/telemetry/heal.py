#!/usr/bin/python3
"""hearth-heal: re-probe this host's serves, restart what died, within a budget (seed 002's
one-minute timer).

Installed by roles/heal on GPU hosts that run vLLM or Ollama, as
``/usr/local/libexec/hearth-heal``, run by ``hearth-heal.timer``; standard library only.
Its configuration (``/etc/hearth/heal.json``) comes from the inventory: the serves' units
in the host's GPU start order, each with the URL that answers when it is up.

Each run, per unit in start order:

* it answers ``GET /v1/models`` (twice tried): up, nothing to do;
* the unit is ``activating`` (a vLLM unit waiting for its model): left alone;
* the host serves a **terminal route**: never touched -- a critical journal line pages
  the operator (seed 002: "the router does not try to start, stop, or recover Spark");
* otherwise ``systemctl restart`` it, then wait (bounded) until it answers before the
  next unit, so two serves never initialise CUDA at once. At most ``max_restarts_per_hour``
  per unit, and after the n-th restart in the window the next waits ``backoff_s * 2**(n-1)``;
  an exhausted budget pages instead.

When the NVIDIA device nodes exist, ``nvidia-smi`` answers and a fresh ``cuInit`` fails
(the CUDA-degraded state after an eGPU link drop), it starts the CUDA recovery unit
instead (same budget, never on a terminal route's host).

Every action is a journal line (priority prefix ``<N>`` read by journald) and a metric in
the node exporter's textfile collector (``hearth_heal.prom``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONFIG = "/etc/hearth/heal.json"
OUTPUT = "hearth_heal.prom"
CUDA = "cuda-recovery"
CRIT, WARNING, INFO = 2, 4, 6
HOUR = 3600.0


@dataclass
class Ops:
    """What a run does to the world (replaced by fakes in the unit tests)."""

    probe: Callable[[str, float], str | None]  # url, timeout -> None when up, else the reason
    unit_state: Callable[[str], str]  # systemctl is-active
    restart: Callable[[str], bool]
    start: Callable[[str], bool]
    cuda_degraded: Callable[[], str | None]  # None: fine or not applicable; else why degraded
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    log: Callable[[int, str], None] = lambda level, text: print(f"<{level}>hearth-heal: {text}", flush=True)


@dataclass
class Report:
    up: dict[str, bool] = field(default_factory=dict)
    exhausted: dict[str, bool] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)


def recent(state: dict[str, Any], key: str, now: float) -> list[float]:
    return [t for t in state.setdefault("restarts", {}).get(key, []) if now - t < HOUR]


def allowed(cfg: dict[str, Any], state: dict[str, Any], key: str, now: float) -> tuple[bool, str]:
    """May ``key`` be restarted now? (yes/no, why not)."""
    times = recent(state, key, now)
    if len(times) >= int(cfg["max_restarts_per_hour"]):
        return False, f"budget exhausted ({len(times)} restarts in the last hour)"
    if times:
        wait = float(cfg["backoff_s"]) * 2 ** (len(times) - 1)
        if now - times[-1] < wait:
            return False, f"backing off ({len(times)} restarts this hour; next after {wait:.0f}s)"
    return True, ""


def spend(state: dict[str, Any], key: str, now: float) -> None:
    state["restarts"][key] = [*recent(state, key, now), now]
    counts = state.setdefault("counts", {})
    counts[key] = counts.get(key, 0) + 1


def probe_twice(ops: Ops, url: str, timeout: float) -> str | None:
    reason = ops.probe(url, timeout)
    if reason is None:
        return None
    ops.sleep(2)
    return ops.probe(url, timeout)


def wait_ready(ops: Ops, url: str, timeout: float, deadline_s: float) -> bool:
    end = ops.clock() + deadline_s
    while ops.clock() < end:
        if ops.probe(url, timeout) is None:
            return True
        ops.sleep(2)
    return False


def run(cfg: dict[str, Any], state: dict[str, Any], ops: Ops) -> Report:
    """One pass over the host's serves; ``state`` (restart times, counters) is updated in place."""
    report = Report()
    terminal = cfg.get("terminal_routes") or []
    timeout = float(cfg["probe_timeout_s"])
    pages = state.setdefault("pages", {})
    state.setdefault("restarts", {})
    degraded = ops.cuda_degraded() if cfg.get("cuda_recovery_unit") else None
    if degraded:
        if terminal:
            ops.log(CRIT, f"PAGE: CUDA degraded ({degraded}) on a host serving terminal route(s) "
                          f"{', '.join(terminal)}: not recovering, the operator is paged")  # fmt: skip
            pages[CUDA] = pages.get(CUDA, 0) + 1
        else:
            ok, why = allowed(cfg, state, CUDA, ops.clock())
            if ok:
                ops.log(WARNING, f"CUDA degraded ({degraded}): starting {cfg['cuda_recovery_unit']}")
                spend(state, CUDA, ops.clock())
                started = ops.start(cfg["cuda_recovery_unit"])
                report.actions.append(f"cuda-recovery:{'started' if started else 'failed'}")
                return report  # the recovery restarts every GPU service in start order itself
            ops.log(CRIT, f"PAGE: CUDA degraded ({degraded}), recovery not started: {why}")
            report.exhausted[CUDA] = True
    for serve in cfg["serves"]:
        unit, url = serve["unit"], serve["probe"]
        reason = probe_twice(ops, url, timeout)
        report.up[unit] = reason is None
        report.exhausted[unit] = False
        if reason is None:
            continue
        active = ops.unit_state(unit)
        if active == "activating":
            ops.log(INFO, f"{unit} does not answer yet ({reason}) but is starting: left alone")
            continue
        if terminal:
            ops.log(CRIT, f"PAGE: {unit} ({serve['name']}) is down ({reason}; unit {active}) on a host "
                          f"serving terminal route(s) {', '.join(terminal)}: not restarting, the operator is paged")
            pages[unit] = pages.get(unit, 0) + 1
            report.actions.append(f"page:{unit}")
            continue
        ok, why = allowed(cfg, state, unit, ops.clock())
        if not ok:
            ops.log(CRIT, f"PAGE: {unit} ({serve['name']}) is down ({reason}; unit {active}), not restarted: {why}")
            report.exhausted[unit] = why.startswith("budget")
            if report.exhausted[unit]:
                pages[unit] = pages.get(unit, 0) + 1
            report.actions.append(f"held:{unit}")
            continue
        ops.log(WARNING, f"{unit} ({serve['name']}) is down ({reason}; unit {active}): restarting")
        spend(state, unit, ops.clock())
        restarted = ops.restart(unit)
        ready = restarted and wait_ready(ops, url, timeout, float(serve["ready_timeout_s"]))
        report.up[unit] = ready
        ops.log(INFO if ready else CRIT, f"{unit} {'answers again' if ready else 'did not come back'} after restart")
        report.actions.append(f"restart:{unit}:{'ready' if ready else 'not-ready'}")
    return report


def render(cfg: dict[str, Any], state: dict[str, Any], report: Report, now: float) -> str:
    host = cfg["host"]
    lines: list[str] = []

    def metric(name: str, kind: str, text: str, rows: list[tuple[dict[str, str], float]]) -> None:
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
        for labels, value in rows:
            label_text = ",".join(f'{k}="{v}"' for k, v in {"host": host, **labels}.items())
            lines.append(f"{name}{{{label_text}}} {value:g}")

    units = [s["unit"] for s in cfg["serves"]]
    counts, pages = state.get("counts", {}), state.get("pages", {})
    metric("hearth_heal_serve_up", "gauge", "1 when the serve answered at the last run.",
           [({"unit": u}, 1 if report.up.get(u, True) else 0) for u in units])  # fmt: skip
    metric("hearth_heal_restarts_total", "counter", "Restarts by the healing timer.",
           [({"unit": u}, counts.get(u, 0)) for u in units])  # fmt: skip
    metric("hearth_heal_pages_total", "counter", "Times the timer paged instead of acting.",
           [({"unit": u}, pages.get(u, 0)) for u in [*units, CUDA]])  # fmt: skip
    metric("hearth_heal_budget_exhausted", "gauge", "1 while the restart budget is used up.",
           [({"unit": u}, 1 if report.exhausted.get(u) else 0) for u in units])  # fmt: skip
    metric("hearth_heal_cuda_recoveries_total", "counter", "CUDA recoveries started by the timer.",
           [({}, counts.get(CUDA, 0))])  # fmt: skip
    metric("hearth_heal_terminal_host", "gauge", "1 when this host serves a terminal route (never healed).",
           [({}, 1 if cfg.get("terminal_routes") else 0)])  # fmt: skip
    metric("hearth_heal_last_run_timestamp_seconds", "gauge", "When the healing timer last ran.",
           [({}, round(now))])  # fmt: skip
    return "\n".join(lines) + "\n"


# --- the real world -------------------------------------------------------------------


def http_probe(url: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(65536)
            return None if response.status == 200 else f"HTTP {response.status}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def systemctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=timeout, check=False)


CUINIT = "import ctypes,sys; sys.exit(ctypes.CDLL('libcuda.so.1').cuInit(0))"


def cuda_degraded(nvidia_smi: str) -> str | None:
    """Why CUDA is degraded (nvidia-smi answers, a fresh cuInit fails), or None: fine or untestable."""
    if not os.path.exists("/dev/nvidiactl"):
        return None  # no driver device: nothing to recover (and no way to tell)
    try:
        if subprocess.run([nvidia_smi, "-L"], capture_output=True, timeout=30, check=False).returncode != 0:
            return None  # the driver itself is gone: not the state recovery fixes
        code = subprocess.run([sys.executable, "-c", CUINIT], capture_output=True, timeout=60, check=False).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"CUDA probe failed: {exc}"
    return None if code == 0 else f"cuInit returned {code}"


def load_state(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".hearth-heal.", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    path = (argv or sys.argv[1:] or [CONFIG])[0]
    with open(path) as f:
        cfg = json.load(f)
    state = load_state(cfg["state"])
    ops = Ops(
        probe=http_probe,
        unit_state=lambda unit: systemctl("is-active", unit, timeout=30).stdout.strip() or "unknown",
        restart=lambda unit: systemctl("restart", unit).returncode == 0,
        start=lambda unit: systemctl("start", "--no-block", unit, timeout=30).returncode == 0,
        cuda_degraded=lambda: cuda_degraded(cfg.get("nvidia_smi", "nvidia-smi")),
    )
    report = run(cfg, state, ops)
    write_atomically(cfg["state"], json.dumps(state, sort_keys=True) + "\n", 0o600)
    write_atomically(os.path.join(cfg["textfile_dir"], OUTPUT), render(cfg, state, report, ops.clock()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
