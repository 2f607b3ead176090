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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_sleeper_is_woken_by_the_request_not_failed_over(tmp_path: Path) -> None:
    port = free_port()
    coder = await RestartableUpstream("qwen2.5-coder:14b").start_on(port)
    hands = await StandinUpstream("glm-4.5-air-awq").start()
    catcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    catcher.bind(("127.0.0.1", 0))
    catcher.setblocking(False)
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
