"""Fault suite: a normal client's latency while 8 connections misbehave at once.

The gateway runs as its own process (``hearth gateway serve``, one client key) in front
of a mock upstream; a second process (:mod:`tests.gateway.hostile_flood`) opens one
connection per way of misbehaving -- a slowloris head, a slow body, an oversized body,
a gzip bomb with a key and one without, deeply nested JSON, a flood of requests with
no key, request heads past the header limits -- each reconnecting whenever it is
answered or cut off. Meanwhile a well-behaved keyed client sends ordinary requests
one at a time. Printed: its latency idle and under the hostile load (goal: within 2x,
recorded in docs/benchmarks.md). The machine is shared, so the only assertions are
bounded behaviour: every normal request answered 200, every misbehaver answered or
cut off and never served, the gateway alive, no leaked slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from hearth.bench.gateway_procs import cpu_layout, free_port, spawn, wait_http
from hearth.bench.mock_upstream import MockSettings, MockUpstream

from .hostile import AUTH, CHAT, KEY
from .test_reliability_helpers import TOKEN, chat, policy

ROOT = Path(__file__).resolve().parents[2]
NORMAL_REQUESTS = 80
FLOOD_S = 6.0


async def _measure(base: str, n: int) -> list[float]:
    async with aiohttp.ClientSession() as s:
        out = []
        for i in range(n + 1):
            t0 = time.perf_counter()
            async with s.post(base + CHAT, json=chat(), headers=AUTH,
                              timeout=aiohttp.ClientTimeout(total=30)) as r:
                await r.read()
                assert r.status == 200, r.status
            if i:  # the first one connects
                out.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.01)
        return out


def _pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


async def test_normal_latency_under_eight_hostile_connections(tmp_path: Path) -> None:
    mock = await MockUpstream(MockSettings(chunk_interval_ms=1)).start()
    token = tmp_path / "admin.token"
    token.write_text(TOKEN)
    port = free_port()
    data = policy(mock.url, token)
    data.update(listen=[f"127.0.0.1:{port}"], max_body_bytes=8 << 20,
                allow_unauthenticated_loopback=False,
                limits={"header_timeout_s": 2.0, "body_timeout_s": 2.0},
                clients={"app": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}})
    data["timeouts"]["total_s"] = 30
    (tmp_path / "policy.json").write_text(json.dumps(data))
    load_cpu, proxy_cpu = cpu_layout()
    gw = spawn("gateway", [sys.executable, "-m", "hearth.cli", "gateway", "serve", "--config",
                           str(tmp_path / "policy.json"), "--log-level", "WARNING"],
               tmp_path, proxy_cpu)
    base = f"http://127.0.0.1:{port}"
    flood: subprocess.Popen[bytes] | None = None
    try:
        await wait_http(base + "/healthz", gw, tmp_path / "gateway.log", timeout_s=30)
        idle = await _measure(base, NORMAL_REQUESTS)
        flood = subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.hostile_flood", base, str(FLOOD_S)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: _pin(load_cpu)))
        await asyncio.sleep(1.5)  # the flood builds its bomb, then every misbehaver runs
        hostile = await _measure(base, NORMAL_REQUESTS)
        out, _ = await asyncio.to_thread(flood.communicate, timeout=60)
        seen = json.loads(out.decode().strip().splitlines()[-1])
        assert gw.poll() is None, "the gateway died"
        async with aiohttp.ClientSession() as s, s.get(
                base + "/admin/upstreams", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            ups = (await r.json())["upstreams"]
    finally:
        if flood is not None and flood.poll() is None:
            flood.kill()
        gw.terminate()
        gw.wait(10)
        await mock.stop()
    print(f"\n[hostile-load] normal request, idle:      p50 {statistics.median(idle):.2f} ms"
          f"  p95 {_pct(idle, 0.95):.2f} ms")
    print(f"[hostile-load] with 8 misbehaving:        p50 {statistics.median(hostile):.2f} ms"
          f"  p95 {_pct(hostile, 0.95):.2f} ms  max {max(hostile):.2f} ms  (p50 "
          f"{statistics.median(hostile) / statistics.median(idle):.2f}x idle; goal <= 2x)")
    for k, c in seen.items():
        print(f"[hostile-load]   {k}: " + " ".join(f"{s}={n}" for s, n in c.items()))
    # bounded: every misbehaver was answered or cut off, and none was ever served
    assert seen["slowloris head"].get("cut off", 0) >= 1
    assert seen["slow body"].get("408", 0) >= 1
    assert seen["oversized body"].get("413", 0) + seen["oversized body"].get("reset", 0) >= 1
    assert seen["gzip bomb, keyed"].get("415", 0) >= 1
    assert seen["gzip bomb, no key"].get("401", 0) >= 1
    assert seen["deep nesting"].get("400", 0) >= 1
    assert seen["no-key flood"].get("401", 0) >= 1
    assert seen["huge head"].get("400", 0) + seen["huge head"].get("431", 0) >= 1
    assert not any(k in c for c in seen.values() for k in ("200", "500")), seen
    assert mock.stats.requests == 2 * (NORMAL_REQUESTS + 1)
    assert all(u["in_flight"] == 0 and u["queued"] == 0 for u in ups), ups


def _pin(cpu: int | None) -> None:
    import os

    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
