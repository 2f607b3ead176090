"""Wake-on-LAN: a real magic packet captured on 127.0.0.1, one per wake, none lost."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, example_config, running, wait_until, with_upstreams
from .test_proxy import AUTH, body, post

MAC = "d8:bb:c1:30:60:12"
MAGIC = b"\xff" * 6 + bytes.fromhex(MAC.replace(":", "")) * 16


class PacketCatcher:
    """A UDP socket on 127.0.0.1 standing in for the LAN broadcast; optionally 'boots'."""

    def __init__(self, boots: StandinUpstream | None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.packets: list[bytes] = []
        self.boots = boots
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 1024)
            self.packets.append(data)
            if self.boots is not None:
                await asyncio.sleep(0.05)  # "boot time"
                self.boots.awake = True

    def __enter__(self) -> PacketCatcher:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        self.sock.close()


async def setup(tmp_path: Path, catcher_port: int, coder: StandinUpstream,
                **route_changes: object):
    stands = {"windows-gpu": coder, "hands": await StandinUpstream("glm-4.5-air-awq").start()}
    (tmp_path / "admin").write_text("admin-secret\n")
    cfg = with_upstreams(example_config(), stands, admin_token_file=str(tmp_path / "admin"))
    data = cfg.model_dump(mode="json")
    data["wol"] = {"address": "127.0.0.1", "port": catcher_port}
    data["upstreams"]["windows-gpu"]["sleep"]["ready_timeout_s"] = 5.0
    data["routes"]["coder-local"].update(route_changes)
    return parse_config(data), stands


async def test_one_packet_for_many_waiting_requests_none_lost(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        try:
            async with running(cfg) as (base, st):
                up = st.upstreams["windows-gpu"]
                await wait_until(lambda: up.state == "asleep", "detected asleep")
                probes = coder.probes
                await asyncio.sleep(0.3)  # many probe intervals: an asleep host is left alone
                assert coder.probes == probes and not catcher.packets
                n = 6
                results = await asyncio.gather(*[
                    post(base, body(f"req {i}", model="hearth/coder-local")) for i in range(n)])
                assert [r[0] for r in results] == [200] * n
                assert all(r[1]["X-Hearth-Upstream"] == "windows-gpu" for r in results)
                assert catcher.packets == [MAGIC]  # exactly one magic packet
                assert len(coder.requests) == n and coder.max_active == 1  # cap of 1 slot
                assert any("woke:windows-gpu" in r[1]["X-Hearth-Reason"] for r in results)
                async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
                    text = await r.text()
                assert 'hearth_wakes_total{upstream="windows-gpu"} 1.0' in text
        finally:
            for s in stands.values():
                await s.stop()


@pytest.mark.parametrize("on_busy", ["queue", "busy"])
async def test_every_request_held_through_a_wake_is_answered(tmp_path: Path, on_busy: str) -> None:
    """10 requests at once to a sleeping 1-slot box whose route queues at most 2: one
    packet, 10 answers in arrival order (they were admitted when held for the wake); the
    queue's bound still refuses arrivals to the awake box beyond it."""
    coder = await StandinUpstream("qwen2.5-coder:14b", mode="gate").start()
    coder.awake = False
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder, on_busy=on_busy,
                                  queue={"max": 2, "timeout_s": 30}, failover=[])
        try:
            async with running(cfg) as (base, st):
                up = st.upstreams["windows-gpu"]
                await wait_until(lambda: up.state == "asleep", "detected asleep")
                n = 10
                held = [asyncio.create_task(post(base, body(f"req {i}", model="hearth/coder-local")))
                        for i in range(n)]
                await wait_until(lambda: up.in_flight == 1 and len(up.waiters) == n - 1, "all held ones waiting")
                if on_busy == "queue":  # a newcomer to the awake box meets the queue's bound
                    status, _h, _ = await post(base, body("late", model="hearth/coder-local"))
                    assert status == 429
                coder.release.set()
                results = await asyncio.gather(*held)
                assert [r[0] for r in results] == [200] * n
                assert catcher.packets == [MAGIC]
                assert coder.max_active == 1 and len(coder.requests) == n
        finally:
            for s in stands.values():
                await s.stop()


async def test_requests_beyond_the_hold_bound_are_refused_at_once(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    with PacketCatcher(boots=None) as catcher:  # the box stays asleep: only the bound answers
        cfg, stands = await setup(tmp_path, catcher.port, coder, failover=[])
        data = cfg.model_dump(mode="json")
        data["upstreams"]["windows-gpu"]["sleep"].update(max_waiters=4, ready_timeout_s=3.0)
        try:
            async with running(parse_config(data)) as (base, st):
                up = st.upstreams["windows-gpu"]
                await wait_until(lambda: up.state == "asleep", "detected asleep")
                held = [asyncio.create_task(post(base, body(f"req {i}", model="hearth/coder-local")))
                        for i in range(4)]
                await wait_until(lambda: st.health.wake_waiters.get("windows-gpu") == 4, "4 held")
                status, _h, payload = await post(base, body("fifth", model="hearth/coder-local"))
                assert status == 503 and b"too many requests waiting" in payload, payload
                assert not any(t.done() for t in held)  # refused while the others still wait
                assert [r[0] for r in await asyncio.gather(*held)] == [504] * 4
                assert catcher.packets == [MAGIC]
        finally:
            for s in stands.values():
                await s.stop()


async def test_no_wake_in_time_fails_over_or_504(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    with PacketCatcher(boots=None) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        data = cfg.model_dump(mode="json")
        data["upstreams"]["windows-gpu"]["sleep"]["ready_timeout_s"] = 0.3
        try:
            async with running(parse_config(data)) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep")
                status, h, _ = await post(base, body("x", model="hearth/coder-local"))
                assert status == 200 and h["X-Hearth-Upstream"] == "hands"
                assert "failover:coder-local->code" in h["X-Hearth-Reason"]
                assert len(catcher.packets) == 1
            data["routes"]["coder-local"]["failover"] = []
            async with running(parse_config(data)) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep")
                status, _h, _ = await post(base, body("x", model="hearth/coder-local"))
                assert status == 504
                assert len(catcher.packets) == 2
        finally:
            for s in stands.values():
                await s.stop()


async def test_keep_warm_wakes_and_preloads_ollama(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        try:
            async with running(cfg) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep")
                async with aiohttp.ClientSession() as s:
                    async with s.post(base + "/admin/keep-warm/windows-gpu",
                                      json={"minutes": 45}) as r:
                        assert r.status == 401
                    async with s.post(base + "/admin/keep-warm/windows-gpu",
                                      json={"minutes": 45},
                                      headers={"Authorization": "Bearer admin-secret"}) as r:
                        assert r.status == 200
                        res = await r.json()
                assert res["awake"] is True and res["preload_status"] == 200
                assert catcher.packets == [MAGIC]
                assert coder.paths == ["/api/generate"]
                assert coder.requests[0] == {"model": "qwen2.5-coder:14b",
                                             "keep_alive": 2700}  # seconds, as Ollama reads a number
                assert "prompt" not in coder.requests[0]
        finally:
            for s in stands.values():
                await s.stop()
    assert AUTH  # same client key as the proxy tests
