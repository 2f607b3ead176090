"""POST /admin/wake/<upstream> (the status page's Wake button) and GET /status without a
browser: the admin token is required, a host that never sleeps is refused, a sleeper is
woken with one magic packet; the page is HTML with no action buttons in it."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from hearth.gateway.statuspage import sparkline

from .standins import StandinUpstream, running, wait_until
from .test_wake import PacketCatcher, setup

ADMIN = {"Authorization": "Bearer admin-secret"}


async def test_admin_wake_and_the_plain_page(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        try:
            async with running(cfg) as (base, st), aiohttp.ClientSession() as s:
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep", "asleep")
                async with s.get(base + "/status") as r:
                    page = await r.text()
                    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
                    assert "Content-Security-Policy" in r.headers
                assert 'data-upstream="windows-gpu"' in page and ">asleep<" in page
                assert "<button data-action" not in page and "admin-secret" not in page
                async with s.post(base + "/admin/wake/windows-gpu") as r:
                    assert r.status == 401
                async with s.post(base + "/admin/wake/hands", headers=ADMIN) as r:
                    assert r.status == 400
                async with s.post(base + "/admin/wake/nope", headers=ADMIN) as r:
                    assert r.status == 404
                assert not catcher.packets
                async with s.post(base + "/admin/wake/windows-gpu", headers=ADMIN) as r:
                    assert r.status == 200 and (await r.json())["awake"] is True
                assert len(catcher.packets) == 1 and st.upstreams["windows-gpu"].state == "healthy"
        finally:
            for stand in stands.values():
                await stand.stop()


def test_sparkline() -> None:
    assert "<svg" not in sparkline([5.0])
    svg = sparkline([10.0, 30.0, 20.0], width=100, height=22)
    assert svg.count(",") == 3 and 'points="0.0,20.0 50.0,2.0 100.0,11.0"' in svg
