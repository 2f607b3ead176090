"""/status with a LAN listener (issue 13 item 5 with issue 22's ``gateway.lan``): the page
and its live part answer a peer outside the admin networks only with the admin token,
and give it nothing of the cluster without one. From an inventory, the admin networks
are loopback and the overlay (tests/unit/test_reach.py); here 127.0.0.1/32 plays them and
a client bound to 127.0.0.2 plays a machine on the LAN (the same listener, as on a
gateway host whose LAN address listens too)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, running, wait_until
from .test_reach import _policy

TOKEN = "status-admin-secret"


async def _get(base: str, path: str, source: str, token: str | None = None) -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=conn) as s, s.get(base + path, headers=headers) as r:
        return r.status, await r.text(), dict(r.headers)


async def test_status_page_needs_the_admin_token_off_the_admin_networks(tmp_path: Path) -> None:
    a, b = await StandinUpstream("m-a").start(), await StandinUpstream("m-b").start()
    token = tmp_path / "admin-token"
    token.write_text(TOKEN + "\n")
    try:
        pol = _policy(a, b, admin_token_file=str(token), admin_networks=["127.0.0.1/32", "10.77.0.0/24"])
        async with running(parse_config(pol)) as (base, st):
            await wait_until(lambda: st.upstreams["ua"].state == "healthy", "ua up")
            # a peer in the admin networks (loopback, the overlay) reads it without a token
            for path in ("/status", "/status?part=live"):
                status, text, _ = await _get(base, path, "127.0.0.1")
                assert status == 200 and 'data-upstream="ua"' in text, path
            # a LAN peer: 401 and nothing of the cluster, without a token or with a wrong one
            for path in ("/status", "/status?part=live", "/status?part=x"):
                for given in (None, "wrong", TOKEN + "x", ""):
                    status, text, headers = await _get(base, path, "127.0.0.2", given)
                    assert status == 401, (path, given)
                    assert headers.get("WWW-Authenticate") == "Bearer"
                    error = json.loads(text)["error"]
                    assert error["code"] == "status_needs_token" and "admin token" in error["message"]
                    for secret in ("m-a", "m-b", a.url, b.url, TOKEN, "data-upstream", "<table"):
                        assert secret not in text
                    assert set(json.loads(text)) == {"error"}
            # with the admin token the LAN peer reads it (its buttons still need the admin
            # API, which the admin networks alone reach)
            status, text, _ = await _get(base, "/status", "127.0.0.2", TOKEN)
            assert status == 200 and 'data-upstream="ua"' in text
            assert TOKEN not in text
            status, _, _ = await _get(base, "/admin/upstreams", "127.0.0.2", TOKEN)
            assert status == 403
            # the client API itself is not affected by the page's rule
            status, _, _ = await _get(base, "/healthz", "127.0.0.2")
            assert status == 200

        # no admin token configured: a LAN peer is refused whatever it sends
        pol = _policy(a, b, admin_networks=["127.0.0.1/32"])
        async with running(parse_config(pol)) as (base, _st):
            for given in (None, "", "anything"):
                status, _, _ = await _get(base, "/status", "127.0.0.2", given)
                assert status == 401, given
            status, _, _ = await _get(base, "/status", "127.0.0.1")
            assert status == 200
    finally:
        await a.stop()
        await b.stop()
