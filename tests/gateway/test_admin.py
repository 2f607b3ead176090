"""Admin API: auth, upstream states, drain/undrain, reload (good and bad), metrics."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from hearth.gateway.config import dump_config

from .standins import example_config, running, wait_until, with_upstreams
from .test_proxy import body, post, standins, stop_all

ADMIN = {"Authorization": "Bearer admin-secret"}


async def admin(base: str, method: str, path: str, headers: dict[str, str] | None = ADMIN
                ) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.request(method, base + path,
                                                       headers=headers or {}) as r:
        return r.status, json.loads(await r.read())


async def test_admin_auth_upstreams_drain(tmp_path: Path) -> None:
    stands = await standins(mouth="down")
    (tmp_path / "tok").write_text("admin-secret")
    cfg = with_upstreams(example_config(), stands, admin_token_file=str(tmp_path / "tok"))
    try:
        async with running(cfg) as (base, st):
            assert (await admin(base, "GET", "/admin/upstreams", None))[0] == 401
            assert (await admin(base, "GET", "/admin/upstreams",
                                {"Authorization": "Bearer nope"}))[0] == 401
            await wait_until(lambda: st.upstreams["mouth"].state == "down")
            await wait_until(lambda: st.upstreams["hands"].state == "healthy")
            status, data = await admin(base, "GET", "/admin/upstreams")
            assert status == 200
            ups = {u["name"]: u for u in data["upstreams"]}
            assert ups["mouth"]["state"] == "down" and ups["mouth"]["last_error"]
            assert ups["hands"]["cap"] == 4 and ups["hands"]["in_flight"] == 0
            assert data["routes"]["coder-local"]["failover"] == ["code", "reasoning"]
            # drain: auto traffic goes elsewhere, explicit pins still pass
            assert (await admin(base, "POST", "/admin/drain/code"))[0] == 200
            assert (await admin(base, "POST", "/admin/drain/nope"))[0] == 404
            _s, h, _ = await post(base, body("refactor this"))
            assert h["X-Hearth-Route"] == "reasoning" and "drained:code->reasoning" in \
                h["X-Hearth-Reason"]
            _s, h, _ = await post(base, body("refactor this", model="hearth/code"))
            assert h["X-Hearth-Upstream"] == "hands"
            status, data = await admin(base, "GET", "/admin/upstreams")
            assert data["routes"]["code"]["drained"] is True
            # hands also serves 'agent': it is draining only once both are drained
            assert {u["name"]: u for u in data["upstreams"]}["hands"]["state"] == "healthy"
            assert (await admin(base, "POST", "/admin/drain/agent"))[0] == 200
            status, data = await admin(base, "GET", "/admin/upstreams")
            assert {u["name"]: u for u in data["upstreams"]}["hands"]["state"] == "draining"
            assert (await admin(base, "POST", "/admin/undrain/code"))[0] == 200
            _s, h, _ = await post(base, body("refactor this"))
            assert h["X-Hearth-Route"] == "code"
            async with aiohttp.ClientSession() as s:
                async with s.get(base + "/healthz") as r:
                    assert r.status == 200
                async with s.get(base + "/readyz") as r:
                    assert r.status == 200
                async with s.get(base + "/metrics") as r:
                    m = await r.text()
            assert 'hearth_requests_total{bucket="coding",route="code",status="200"}' in m
            assert 'hearth_fallbacks_total{from_route="code",kind="drain",to_route="reasoning"}' \
                in m
            assert 'hearth_upstream_cap{upstream="hands"} 4.0' in m
            assert "hearth_ttft_seconds" in m and "hearth_upstream_in_flight" in m
    finally:
        await stop_all(stands)


async def test_admin_disabled_without_token_file_and_readyz_when_all_down() -> None:
    stands = await standins(**dict.fromkeys(("eyes", "hands", "spark", "mouth"), "down"))
    try:
        async with running(with_upstreams(example_config(), stands,
                                          admin_token_file=None)) as (base, st):
            assert (await admin(base, "GET", "/admin/upstreams"))[0] == 403
            await wait_until(lambda: all(u.fails for u in st.upstreams.values()))
            async with aiohttp.ClientSession() as s, s.get(base + "/readyz") as r:
                assert r.status == 503
    finally:
        await stop_all(stands)


async def test_reload_bad_policy_keeps_old_good_policy_applies(tmp_path: Path) -> None:
    stands = await standins()
    (tmp_path / "tok").write_text("admin-secret")
    cfg = with_upstreams(example_config(), stands, admin_token_file=str(tmp_path / "tok"))
    policy = tmp_path / "gateway.yml"
    policy.write_text(dump_config(cfg))
    try:
        async with running(cfg, str(policy)) as (base, st):
            data = cfg.model_dump(mode="json")
            data["routes"]["code"]["failover"] = ["nowhere"]
            policy.write_text(json.dumps(data))
            status, err = await admin(base, "POST", "/admin/reload")
            assert status == 400 and err["error"]["code"] == "invalid_policy"
            assert "routes.code.failover[0]: unknown route 'nowhere'" in err["error"]["errors"]
            policy.write_text("routing: [unclosed")
            assert (await admin(base, "POST", "/admin/reload"))[0] == 400
            _s, h, _ = await post(base, body("refactor this"))
            assert h["X-Hearth-Route"] == "code"  # old policy still serving
            data["routes"]["code"]["failover"] = ["reasoning"]
            data["routing"]["buckets"]["coding"]["route"] = "chat"
            policy.write_text(json.dumps(data))
            status, res = await admin(base, "POST", "/admin/reload")
            assert status == 200 and res["reloaded"] is True
            _s, h, _ = await post(base, body("refactor this"))
            assert h["X-Hearth-Route"] == "chat"
            assert st.cfg.routing.buckets["coding"].route == "chat"
    finally:
        await stop_all(stands)
