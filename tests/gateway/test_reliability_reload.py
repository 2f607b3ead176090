"""Policy reload under load through the admin API; a bad policy is rejected, traffic unharmed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from hearth.bench.mock_upstream import MockSettings

from .test_reliability_helpers import TOKEN, Outcome, call, chat, policy, rig, tally

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_policy_reload_under_load(tmp_path: Path) -> None:
    async with rig(tmp_path, MockSettings(latency_ms=2, chunk_interval_ms=1), slots=64) as r, \
            aiohttp.ClientSession() as s:
        good = policy(r.mock.url, tmp_path / "admin.token", slots=64)
        stop = asyncio.Event()
        outs: list[Outcome] = []

        async def traffic(worker: int) -> None:
            for i in range(60):  # bounded
                if stop.is_set() and i >= 10:
                    return
                outs.append(await call(s, r.base, chat((i + worker) % 3 == 0)))

        workers = [asyncio.create_task(traffic(w)) for w in range(8)]
        admin: list[int] = []
        for i in range(6):
            p = dict(good)
            p["upstreams"] = {"mock": {**good["upstreams"]["mock"], "slots": 64 + i}}
            if i % 2:
                p = policy(r.mock.url, tmp_path / "admin.token", slots=64, extra_route=True)
            r.policy_path.write_text(json.dumps(p))
            async with s.post(r.base + "/admin/reload", headers=AUTH) as resp:
                admin.append(resp.status)
                assert resp.status == 200, await resp.text()
            await asyncio.sleep(0)
        bad = dict(good, routes={"chat": {"upstreams": ["nope"]}})
        r.policy_path.write_text(json.dumps(bad))
        async with s.post(r.base + "/admin/reload", headers=AUTH) as resp:
            admin.append(resp.status)
            err = await resp.json()
        assert resp.status == 400 and err["error"]["code"] == "invalid_policy"
        r.policy_path.write_text("{ not yaml: [")
        async with s.post(r.base + "/admin/reload", headers=AUTH) as resp:
            admin.append(resp.status)
        assert resp.status == 400
        for hdr in ({}, {"Authorization": "Bearer wrong"}):
            async with s.post(r.base + "/admin/reload", headers=hdr) as resp:
                admin.append(resp.status)
                assert resp.status == 401
        stop.set()
        await asyncio.gather(*workers)
        c = tally("reload under load (traffic)", outs)
        print(f"[reliability] reload under load (admin): {sorted(admin)}")
        assert c == {200: len(outs)} and len(outs) >= 80
        assert all(o.done for o in outs if o.chunks)
        assert r.mock.stats.completed == len(outs)
        # the last good policy (with the extra route) is still in force
        assert "extra" in r.state.cfg.routes
        assert (await call(s, r.base, chat(model="hearth/extra"))).status == 200
        await r.assert_no_leak()
