"""Opt-in cloud fallback per route (seed 004): only after the whole local chain is
unavailable, only for clients allowed to fall back, never on a terminal or private route,
never for images unless the alias can see; a provider 404 makes the alias absent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from hearth.gateway.config import ConfigError, parse_config

from .cloud_provider_standin import StandinProvider
from .cloud_setup import ANY, OPENCODE, cloud_config
from .standins import example_config, running, wait_until
from .test_proxy import body, post, standins, stop_all

IMAGE = [{"type": "text", "text": "what is this"},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]


async def _get(base: str, path: str, token: str | None = None) -> tuple[int, str]:
    h = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(base + path, headers=h) as r:
        return r.status, await r.text()


async def test_fallback_only_when_whole_local_chain_is_unavailable(tmp_path: Path) -> None:
    provider = await StandinProvider().start()
    stands = await standins(hands="fail500")
    cfg = cloud_config(tmp_path, provider, stands,
                       routes={"code": {"cloud_fallback": "openrouter/llama-70b"}})
    try:
        async with running(cfg) as (base, _st):
            # code's upstream (hands) fails, its failover (reasoning/spark) answers: local
            status, h, _ = await post(base, body("x", model="hearth/code"), ANY)
            assert status == 200 and h["X-Hearth-Upstream"] == "spark"
            assert not provider.requests
            stands["spark"].mode = "fail500"
            status, h, raw = await post(base, body("x 10.77.0.70", model="hearth/code"), ANY)
            assert status == 200, raw
            assert "cloud_fallback:error" in h["X-Hearth-Reason"]
            assert h["X-Hearth-Route"] == "cloud/openrouter"
            assert h["X-Hearth-Upstream"] == "cloud/openrouter/llama-70b"
            assert provider.requests[-1]["model"] == "meta-llama/llama-3.3-70b-instruct:free"
            assert "10.77.0.70" not in json.dumps(provider.requests[-1])  # sanitised
            # a client whose cloud section does not allow fallback gets the local error
            status, h, raw = await post(base, body("x", model="hearth/code"), OPENCODE)
            assert status == 503 and len(provider.requests) == 1
            assert "no_cloud_fallback:client_not_allowed" in h["X-Hearth-Reason"]
            # the terminal route itself never falls back
            status, _h, _ = await post(base, body("x", model="hearth/reasoning"), ANY)
            assert status == 503 and len(provider.requests) == 1
            _, text = await _get(base, "/metrics")
            assert ('hearth_cloud_fallbacks_total{alias="openrouter/llama-70b",route="code",'
                    'why="error"} 1.0') in text
        audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert [a["via"] for a in audit] == ["cloud_fallback"]
        assert audit[0]["client"] == "anything" and audit[0]["redacted"]["private_ip"] == 1
    finally:
        await provider.stop()
        await stop_all(stands)


async def test_fallback_when_busy_past_queue_and_images_need_a_seeing_alias(
        tmp_path: Path) -> None:
    provider = await StandinProvider().start()
    stands = await standins(eyes="fail500", spark="fail500")
    cfg = cloud_config(tmp_path, provider, stands, routes={
        "vision": {"cloud_fallback": "openrouter/llama-70b"},
        "gemma": {"cloud_fallback": "openrouter/gemma-27b"}})
    try:
        async with running(cfg) as (base, st):
            img = {"model": "hearth/vision", "messages": [{"role": "user", "content": IMAGE}]}
            status, h, _ = await post(base, img, ANY)  # llama-70b cannot see: no fallback
            assert status == 503 and not provider.requests
            assert "no_cloud_fallback:image_alias_blind" in h["X-Hearth-Reason"]
            status, h, _ = await post(base, body("text only", model="hearth/vision"), ANY)
            assert status == 200 and "cloud_fallback:" in h["X-Hearth-Reason"]
            # gemma route (on_busy: busy): all of mouth's slots held -> busy -> cloud
            stands["mouth"].mode = "gate"
            held = [await _spawn(base, body("hold", model="hearth/gemma"))
                    for _ in range(st.upstreams["mouth"].slots)]
            await wait_until(lambda: stands["mouth"].active == st.upstreams["mouth"].slots)
            status, h, raw = await post(base, body("one more", model="hearth/gemma"), ANY)
            assert status == 200, raw
            assert "cloud_fallback:busy" in h["X-Hearth-Reason"]
            assert provider.requests[-1]["model"] == "google/gemma-3-27b-it:free"
            stands["mouth"].release.set()
            for t in held:
                await t
    finally:
        await provider.stop()
        await stop_all(stands)


async def _spawn(base: str, payload: dict[str, object]) -> object:
    return asyncio.ensure_future(post(base, payload, ANY))


async def test_provider_404_names_alias_and_command_and_makes_alias_absent(
        tmp_path: Path) -> None:
    provider = await StandinProvider().start()
    provider.retire("meta-llama/llama-3.3-70b-instruct:free")
    stands = await standins(hands="fail500", spark="fail500")
    cfg = cloud_config(tmp_path, provider, stands,
                       routes={"code": {"cloud_fallback": "openrouter/llama-70b"}})
    try:
        async with running(cfg) as (base, _st):
            status, _h, raw = await post(base, body("x", model="cloud/openrouter/llama-70b"),
                                         ANY)
            err = json.loads(raw)["error"]
            assert status == 404 and err["code"] == "cloud_model_retired"
            assert "cloud/openrouter/llama-70b" in err["message"]
            assert "hearth cloud check INVENTORY --write" in err["message"]
            status, text = await _get(base, "/admin/upstreams", "admin-token")
            row = next(c for c in json.loads(text)["clouds"]
                       if c["alias"] == "openrouter/llama-70b")
            assert row["available"] is False and "404" in row["unavailable_reason"]
            _, text = await _get(base, "/metrics")
            assert ('hearth_cloud_alias_available{alias="llama-70b",provider="openrouter"} 0.0'
                    in text)
            n = len(provider.requests)
            status, h, _ = await post(base, body("x", model="hearth/code"), ANY)
            assert status == 503 and len(provider.requests) == n  # as if absent
            assert "no_cloud_fallback:alias_unavailable" in h["X-Hearth-Reason"]
    finally:
        await provider.stop()
        await stop_all(stands)


@pytest.mark.parametrize("extra, message", [
    ({"cloud_fallback": "openrouter/llama-70b", "terminal": True, "spill": [], "failover": [],
      "on_busy": "queue"}, "a terminal route never falls back"),
    ({"cloud_fallback": "openrouter/llama-70b", "private": True},
     "a private route never sends anything"),
    ({"cloud_fallback": "openrouter/qwen3-coder", "cloud_no_retention": True},
     "may retain or train on prompts"),
    ({"cloud_fallback": "openrouter/nope"}, "unknown cloud alias"),
])
def test_validation_refuses_fallback_on_terminal_private_or_retaining(
        extra: dict[str, object], message: str) -> None:
    data = example_config().model_dump(mode="json")
    data["routes"]["code"].update(extra)
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert any(e.startswith("routes.code.cloud_fallback: ") and message in e
               for e in exc.value.errors), exc.value.errors


async def test_fallback_after_a_sleeper_misses_its_ready_timeout(tmp_path: Path) -> None:
    provider = await StandinProvider().start()
    stands = await standins(hands="fail500", spark="fail500")  # windows-gpu never wakes
    cfg = cloud_config(tmp_path, provider, stands,
                       routes={"coder-local": {"cloud_fallback": "openrouter/llama-70b"}})
    try:
        async with running(cfg) as (base, _st):
            status, h, raw = await post(base, body("x", model="hearth/coder-local"), ANY)
            assert status == 200, raw
            reason = h["X-Hearth-Reason"]
            assert "failover:coder-local->code" in reason and "cloud_fallback:" in reason
            assert len(provider.requests) == 1
            _, text = await _get(base, "/metrics")
            assert 'hearth_wakes_total{upstream="windows-gpu"} 1.0' in text  # it was woken
    finally:
        await provider.stop()
        await stop_all(stands)
