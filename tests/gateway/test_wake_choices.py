"""Wake choices per route (issue 13 item 2), each through the real gateway with a real
magic packet on loopback: hold (the default: one packet, the request waits), spill
(answered at once by an awake fallback while the box wakes in the background),
confirm (never woken unless the request asks with X-Hearth-Wake: 1; the answer says
how to ask)."""

from __future__ import annotations

import json
from pathlib import Path

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, running, wait_until
from .test_proxy import body, post
from .test_wake import PacketCatcher, setup

ROUTE = "hearth/coder-local"  # served by windows-gpu (sleeps); fails over to route code (hands)


async def _asleep_coder() -> StandinUpstream:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    return coder


async def test_hold_is_the_default_one_packet_and_the_request_waits(tmp_path: Path) -> None:
    coder = await _asleep_coder()
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        assert cfg.routes["coder-local"].wake == "hold"
        try:
            async with running(cfg) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep", "asleep")
                status, h, _ = await post(base, body("x", model=ROUTE))
                assert status == 200 and h["X-Hearth-Upstream"] == "windows-gpu"
                assert "woke:windows-gpu" in h["X-Hearth-Reason"] and len(catcher.packets) == 1
        finally:
            for s in stands.values():
                await s.stop()


async def test_spill_answers_at_once_from_an_awake_fallback_while_the_box_wakes(tmp_path: Path) -> None:
    coder = await _asleep_coder()
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder, wake="spill")
        try:
            async with running(cfg) as (base, st):
                up = st.upstreams["windows-gpu"]
                await wait_until(lambda: up.state == "asleep", "asleep")
                status, h, _ = await post(base, body("x", model=ROUTE))
                assert status == 200 and h["X-Hearth-Upstream"] == "hands"  # at once, from the fallback
                assert "wake-spill:coder-local->code:windows-gpu_waking" in h["X-Hearth-Reason"]
                assert len(catcher.packets) == 1  # the box wakes in the background
                await wait_until(lambda: up.state == "healthy", "woken in the background")
                status, h, _ = await post(base, body("y", model=ROUTE))
                assert status == 200 and h["X-Hearth-Upstream"] == "windows-gpu"
                assert len(catcher.packets) == 1
        finally:
            for s in stands.values():
                await s.stop()


async def test_spill_with_nothing_awake_to_spill_to_holds(tmp_path: Path) -> None:
    coder = await _asleep_coder()
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder, wake="spill")
        stands["hands"].mode = "down"
        try:
            async with running(cfg) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep", "asleep")
                await wait_until(lambda: st.upstreams["hands"].state == "down", "hands down")
                status, h, _ = await post(base, body("x", model=ROUTE))
                assert status == 200 and h["X-Hearth-Upstream"] == "windows-gpu"
                assert len(catcher.packets) == 1
        finally:
            for s in stands.values():
                await s.stop()


async def test_confirm_never_wakes_unless_asked_and_says_how(tmp_path: Path) -> None:
    coder = await _asleep_coder()
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder, wake="confirm", failover=[])
        try:
            async with running(cfg) as (base, st):
                up = st.upstreams["windows-gpu"]
                await wait_until(lambda: up.state == "asleep", "asleep")
                status, h, raw = await post(base, body("x", model=ROUTE))
                err = json.loads(raw)["error"]
                assert status == 503 and err["code"] == "upstream_asleep", raw
                assert "X-Hearth-Wake: 1" in err["message"] and "windows-gpu" in err["message"]
                assert not catcher.packets and up.state == "asleep"
                status, h, _ = await post(base, body("x", model=ROUTE), headers={"X-Hearth-Wake": "1"})
                assert status == 200 and h["X-Hearth-Upstream"] == "windows-gpu"
                assert len(catcher.packets) == 1
        finally:
            for s in stands.values():
                await s.stop()


async def test_confirm_fails_over_without_waking(tmp_path: Path) -> None:
    coder = await _asleep_coder()
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder, wake="confirm")
        try:
            async with running(parse_config(cfg.model_dump(mode="json"))) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep", "asleep")
                status, h, _ = await post(base, body("x", model=ROUTE))
                assert status == 200 and h["X-Hearth-Upstream"] == "hands"
                assert "asleep:windows-gpu:not_asked" in h["X-Hearth-Reason"]
                assert not catcher.packets
        finally:
            for s in stands.values():
                await s.stop()
