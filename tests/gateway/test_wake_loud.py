"""A wake that fails is loud (issue 13 item 3): consecutive failed wakes of one host
raise a metric and an ERROR log line naming the host, its MAC and the broadcast
address used; a wake that works resets the count, and its cold start goes into a
histogram and into /admin/upstreams. Real gateway, real magic packets on loopback."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import aiohttp
import pytest

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, running, wait_until
from .test_proxy import body, post
from .test_wake import MAC, PacketCatcher, setup

ADMIN = {"Authorization": "Bearer admin-secret"}


async def _get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(base + path, headers=headers) as r:
        return r.status, await r.text()


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def _wake_block(base: str) -> dict:
    async with aiohttp.ClientSession() as s, s.get(base + "/admin/upstreams", headers=ADMIN) as r:
        ups = (await r.json())["upstreams"]
    row = ups["windows-gpu"] if isinstance(ups, dict) else next(u for u in ups if u["name"] == "windows-gpu")
    return dict(row["wake"])


async def test_failed_wakes_are_counted_logged_and_reset_by_a_good_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    caplog.set_level(logging.INFO, logger="hearth.gateway")
    with PacketCatcher(boots=None) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        data = cfg.model_dump(mode="json")
        # short, so the two failing wakes end soon; long enough that the good one, a few ms
        # here, is ready within it on a busy machine (with 0.3 s it once failed over under load)
        data["upstreams"]["windows-gpu"]["sleep"]["ready_timeout_s"] = 2.0
        broadcast = f"127.0.0.1:{catcher.port}"
        try:
            async with running(parse_config(data)) as (base, st):
                up = st.upstreams["windows-gpu"]
                for n in (1, 2):
                    await wait_until(lambda: up.state == "asleep", "asleep")
                    status, h, _ = await post(base, body("x", model="hearth/coder-local"))
                    assert status == 200 and h["X-Hearth-Upstream"] == "hands"  # failed over
                    assert len(catcher.packets) == n
                    _, text = await _get(base, "/metrics")
                    assert _sample(text, "hearth_wake_consecutive_failures", host="windows-gpu", mac=MAC,
                                   broadcast=broadcast) == n
                    assert _sample(text, "hearth_wake_failures_total", host="windows-gpu") == n
                    wake = await _wake_block(base)
                    assert wake["consecutive_failures"] == n
                    assert wake["last"]["ok"] is False and "did not become ready" in wake["last"]["error"]
                    assert wake["cold_start_s"]["count"] == 0
                errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                assert len([m for m in errors if "wake FAILED" in m]) == 2, errors
                assert all(re.search(rf"host windows-gpu .*MAC {MAC}, magic packet to {broadcast}", m)
                           for m in errors if "wake FAILED" in m), errors
                assert "2 failed wake(s) in a row" in errors[-1]

                catcher.boots = coder  # the NIC wakes again
                await wait_until(lambda: up.state == "asleep", "asleep")
                status, h, _ = await post(base, body("y", model="hearth/coder-local"))
                assert status == 200 and h["X-Hearth-Upstream"] == "windows-gpu"
                _, text = await _get(base, "/metrics")
                assert _sample(text, "hearth_wake_consecutive_failures", host="windows-gpu") == 0
                assert _sample(text, "hearth_cold_start_seconds_count", upstream="windows-gpu") == 1
                wake = await _wake_block(base)
                assert wake["consecutive_failures"] == 0 and wake["last"]["ok"] is True
                assert wake["cold_start_s"]["count"] == 1
                assert 0 < wake["cold_start_s"]["recent"][0] == wake["last"]["seconds"] < 5
                assert any("worked after 2 failed wake(s)" in r.getMessage() for r in caplog.records)
        finally:
            for s in stands.values():
                await s.stop()


async def test_awake_hosts_have_no_wake_block(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        try:
            async with running(cfg) as (base, _st):
                async with aiohttp.ClientSession() as s, s.get(base + "/admin/upstreams", headers=ADMIN) as r:
                    ups = (await r.json())["upstreams"]
                rows = ups.values() if isinstance(ups, dict) else ups
                for row in rows:
                    assert (row["wake"] is None) == (not row["sleeps"]), row
        finally:
            for s in stands.values():
                await s.stop()
