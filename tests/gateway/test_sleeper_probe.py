"""A sleeper is taken as asleep after ``down_after`` missed probes, not after one.

An upstream the gateway holds asleep is never probed again, so one slow or failed probe
of an awake box (a busy machine, a model loading) used to leave it reported asleep and
passed over until a request woke it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .standins import StandinUpstream, example_config, running, wait_until, with_upstreams


async def test_one_missed_probe_leaves_an_awake_sleeper_probed_and_healthy(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    cfg = with_upstreams(example_config(), {"windows-gpu": coder}, health={"down_after": 2})
    try:
        async with running(cfg) as (_base, st):
            up = st.upstreams["windows-gpu"]
            assert up.sleeps
            await wait_until(lambda: up.state == "healthy", "first probe answered")

            coder.awake = False  # one probe unanswered ...
            await wait_until(lambda: up.fails == 1, "one probe missed")
            coder.awake = True  # ... then the box answers again
            assert up.state == "degraded", up.state
            await wait_until(lambda: up.state == "healthy", "healthy again after one miss")

            coder.awake = False  # now it really sleeps: two misses in a row
            await wait_until(lambda: up.state == "asleep", "taken as asleep after down_after misses")
            assert up.fails == 2
            probes = coder.probes
            await asyncio.sleep(0.3)  # many probe intervals: an asleep host is left alone
            assert coder.probes == probes
    finally:
        await coder.stop()
