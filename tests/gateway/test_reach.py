"""Issue 22 through the real gateway: model aliases (changed by a reload) and an
upstream's own timeouts."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, running

KEY = "sk-reach-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _policy(a: StandinUpstream, b: StandinUpstream, **extra: Any) -> dict[str, Any]:
    return {"listen": ["127.0.0.1:0"],
            "upstreams": {"ua": {"engine": "vllm", "base_url": a.url, "model": a.model},
                          "ub": {"engine": "vllm", "base_url": b.url, "model": b.model}},
            "routes": {"code": {"upstreams": ["ua"]}, "chat": {"upstreams": ["ub"]}},
            "routing": {"default_route": "chat"},
            "clients": {"c": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}},
            "health": {"interval_s": 0.2, "timeout_s": 1}, **extra}


async def _ask(s: aiohttp.ClientSession, base: str, model: str,
               stream: bool = False) -> tuple[int, str]:
    async with s.post(base + "/v1/chat/completions", headers=AUTH, json={
            "model": model, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}) as r:
        return r.status, r.headers.get("X-Hearth-Upstream", "")


async def test_alias_listed_and_repointed_by_reload_without_client_change(
        tmp_path: Path) -> None:
    a = await StandinUpstream("coder-7b").start()
    b = await StandinUpstream("chatter-9b").start()
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(_policy(a, b, model_aliases={"gpt-4o": "hearth/code"})))
    cfg = parse_config(yaml.safe_load(path.read_text()))
    try:
        async with running(cfg, str(path)) as (base, state), aiohttp.ClientSession() as s:
            async with s.get(base + "/v1/models", headers=AUTH) as r:
                assert "gpt-4o" in [m["id"] for m in (await r.json())["data"]]
            assert await _ask(s, base, "gpt-4o") == (200, "ua")
            assert a.requests[-1]["model"] == "coder-7b"  # the upstream sees its own name
            # the operator re-points the alias (what a deploy + SIGHUP does)
            path.write_text(yaml.safe_dump(_policy(a, b, model_aliases={
                "gpt-4o": "chatter-9b"})))
            await state.reload()
            assert await _ask(s, base, "gpt-4o") == (200, "ub")
            assert b.requests[-1]["model"] == "chatter-9b"
            assert (await _ask(s, base, "gpt-5"))[0] == 404  # not an alias: unknown
    finally:
        await a.stop()
        await b.stop()


async def test_an_upstreams_own_first_byte_timeout_applies() -> None:
    slow = await StandinUpstream("remote-14b", "hang").start()
    fine = await StandinUpstream("chatter-9b").start()
    pol = _policy(slow, fine)
    # the policy's are 5 / 120 / 900 s; this upstream's own: first byte 0.3 s, total 1 s
    pol["upstreams"]["ua"]["timeouts"] = {"connect_s": 0.2, "first_byte_s": 0.3,
                                          "total_s": 1.0}
    try:
        async with running(parse_config(pol)) as (base, _st), aiohttp.ClientSession() as s:
            t0 = time.monotonic()
            assert (await _ask(s, base, "hearth/code", stream=True))[0] == 504  # first byte
            assert (await _ask(s, base, "hearth/code"))[0] in (503, 504)  # total (or down)
            assert time.monotonic() - t0 < 30  # bounded by its own, not the policy's
            assert await _ask(s, base, "hearth/chat") == (200, "ub")
    finally:
        await slow.stop()
        await fine.stop()


async def test_admin_api_answers_only_its_networks(tmp_path: Path) -> None:
    a = await StandinUpstream("coder-7b").start()
    b = await StandinUpstream("chatter-9b").start()
    token = tmp_path / "admin-token"
    token.write_text("admin-secret\n")
    admin = {"Authorization": "Bearer admin-secret"}
    try:
        for nets, want in ((["10.77.0.0/24"], 403), (["127.0.0.0/8", "10.77.0.0/24"], 200),
                           (None, 200)):
            pol = _policy(a, b, admin_token_file=str(token), admin_networks=nets)
            async with running(parse_config(pol)) as (base, _st), \
                    aiohttp.ClientSession() as s:
                async with s.get(base + "/admin/upstreams", headers=admin) as r:
                    assert r.status == want, nets
                    if want == 403:
                        assert (await r.json())["error"]["code"] == "admin_network_refused"
                async with s.get(base + "/v1/models", headers=AUTH) as r:
                    assert r.status == 200  # clients are not affected
    finally:
        await a.stop()
        await b.stop()


async def test_keyless_endpoints_need_a_key_outside_their_networks() -> None:
    """With a LAN listener, /healthz, /readyz and /metrics need a client key from the LAN."""
    a = await StandinUpstream("coder-7b").start()
    b = await StandinUpstream("chatter-9b").start()
    paths = ("/healthz", "/readyz", "/metrics")
    try:
        # 127.0.0.1 (the test's peer) stands for a LAN peer when it is outside the list
        for nets, keyless in ((["10.77.0.0/24"], False), (["127.0.0.0/8"], True), (None, True)):
            pol = _policy(a, b, keyless_networks=nets)
            async with running(parse_config(pol)) as (base, _st), \
                    aiohttp.ClientSession() as s:
                for path in paths:
                    async with s.get(base + path) as r:
                        if keyless:
                            assert r.status in (200, 503), (nets, path)
                        else:
                            assert r.status == 401, (nets, path)
                            assert (await r.json())["error"]["code"] == "invalid_api_key"
                    async with s.get(base + path, headers={"Authorization": "Bearer nope"}) as r:
                        assert (r.status == 401) is not keyless, (nets, path)
                    async with s.get(base + path, headers=AUTH) as r:
                        assert r.status in (200, 503), (nets, path)
                    async with s.get(base + "/v1/models") as r:
                        assert r.status == 401  # a key everywhere else, as before
    finally:
        await a.stop()
        await b.stop()
