"""A sleeper that went to sleep since its last probe: the request wakes it, no failover."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, example_config, running, wait_until, with_upstreams
from .test_proxy import body, post
from .test_wake import MAGIC


class RestartableUpstream(StandinUpstream):
    """A stand-in that can go away (port closed: "asleep") and come back on its port."""

    async def start_on(self, port: int) -> RestartableUpstream:
        await super().start()  # builds the app on an ephemeral port ...
        await self.runner.cleanup()  # type: ignore[union-attr]
        return await self._serve(port)  # ... then serves it on the wanted one

    async def _serve(self, port: int) -> RestartableUpstream:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/api/tags", self._models)
        app.router.add_post("/v1/chat/completions", self._gen)
        app.router.add_post("/api/chat", self._gen)  # an Ollama upstream with a keep_alive
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port, reuse_address=True).start()
        self.port = port
        return self


class SynBlackhole:
    """A port where a connect hangs, as to a box that suspended (no ARP, no RST): a
    listener with a backlog of 0 whose one queue place is taken, so the kernel drops
    every further SYN. Test stand-in for a sleeping host on a real network."""

    def __init__(self, port: int) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(0)
        self.filler = socket.create_connection(("127.0.0.1", port), timeout=1)

    def close(self) -> None:
        self.filler.close()
        self.listener.close()


def magic_catcher() -> socket.socket:
    """A loopback UDP socket standing for the sleeping box's NIC (the gateway's WoL target)."""
    catcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    catcher.bind(("127.0.0.1", 0))
    catcher.setblocking(False)
    return catcher


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_sleeper_is_woken_by_the_request_not_failed_over(tmp_path: Path) -> None:
    port = free_port()
    coder = await RestartableUpstream("qwen2.5-coder:14b").start_on(port)
    hands = await StandinUpstream("glm-4.5-air-awq").start()
    catcher = magic_catcher()
    packets: list[bytes] = []

    async def boot_on_magic_packet() -> None:
        data = await asyncio.get_running_loop().sock_recv(catcher, 1024)
        packets.append(data)
        await coder._serve(port)  # the box is back

    cfg = with_upstreams(example_config(), {"windows-gpu": coder, "hands": hands})
    data = cfg.model_dump(mode="json")
    data["wol"] = {"address": "127.0.0.1", "port": catcher.getsockname()[1]}
    data["health"]["interval_s"] = 3600  # no probe between its sleep and the request
    data["upstreams"]["windows-gpu"]["sleep"]["ready_timeout_s"] = 10.0
    boot = asyncio.get_running_loop().create_task(boot_on_magic_packet())
    try:
        async with running(parse_config(data)) as (base, st):
            up = st.upstreams["windows-gpu"]
            await wait_until(lambda: up.state == "healthy", "first probe")
            await coder.runner.cleanup()  # type: ignore[union-attr]  # it sleeps; the gateway does not know
            status, headers, _ = await post(base, body("implement it", model="hearth/coder-local"))
            assert status == 200
            assert headers["X-Hearth-Upstream"] == "windows-gpu"  # woken, not failed over to `code`
            assert packets == [MAGIC]
    finally:
        boot.cancel()
        catcher.close()
        await hands.stop()
        await coder.stop()


async def test_a_sleeper_that_does_not_answer_a_connect_is_woken_after_its_own_connect_s(
        tmp_path: Path) -> None:
    """A box that suspended since its last probe drops the SYN (a real LAN answers no
    ARP): the request waits the sleeper's ``sleep.connect_s``, not the policy's connect
    timeout (30 s here), before it takes the box as asleep and sends the magic packet."""
    port = free_port()
    coder = await RestartableUpstream("qwen2.5-coder:14b").start_on(port)
    hands = await StandinUpstream("glm-4.5-air-awq").start()
    catcher = magic_catcher()
    packets: list[bytes] = []
    hole: list[SynBlackhole] = []

    async def boot_on_magic_packet() -> None:
        packets.append(await asyncio.get_running_loop().sock_recv(catcher, 1024))
        hole.pop().close()
        await coder._serve(port)

    cfg = with_upstreams(example_config(), {"windows-gpu": coder, "hands": hands})
    data = cfg.model_dump(mode="json")
    data["wol"] = {"address": "127.0.0.1", "port": catcher.getsockname()[1]}
    data["health"]["interval_s"] = 3600
    data["timeouts"]["connect_s"] = 30.0
    data["upstreams"]["windows-gpu"]["sleep"].update(connect_s=0.3, ready_timeout_s=10.0)
    boot = asyncio.get_running_loop().create_task(boot_on_magic_packet())
    try:
        async with running(parse_config(data)) as (base, st):
            up = st.upstreams["windows-gpu"]
            assert st.policy.timeouts["windows-gpu"].connect_s == 0.3
            assert st.policy.timeouts["hands"].connect_s == 30.0  # an always-on box keeps the policy's
            await wait_until(lambda: up.state == "healthy", "first probe")
            await coder.runner.cleanup()  # type: ignore[union-attr]
            hole.append(SynBlackhole(port))
            status, headers, _ = await asyncio.wait_for(
                post(base, body("implement it", model="hearth/coder-local")), 15)
            assert status == 200
            assert headers["X-Hearth-Upstream"] == "windows-gpu"
            assert packets == [MAGIC]
    finally:
        boot.cancel()
        catcher.close()
        for h in hole:
            h.close()
        await hands.stop()
        await coder.stop()
