"""Per-client cloud mode: the official openai client reaches a permitted cloud model by
name; escalation-only and no-cloud clients are refused with what the inventory lacks;
the gateway's own per-alias limits answer 429 before the provider's quota."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import openai
import pytest

from hearth.gateway.config import ConfigError, parse_config

from .cloud_provider_standin import StandinProvider
from .cloud_setup import ANY, ANY_KEY, HERMES, OPENCODE, PRIVATE_KEY, PROVIDER_KEY, cloud_config
from .standins import example_config, running
from .test_proxy import body, post

LLAMA = "cloud/openrouter/llama-70b"


async def test_openai_client_reaches_cloud_model_by_name_and_is_refused_otherwise(
        tmp_path: Path) -> None:
    provider = await StandinProvider().start()
    cfg = cloud_config(tmp_path, provider)
    try:
        async with running(cfg) as (base, _st):
            client = openai.AsyncOpenAI(base_url=base + "/v1", api_key=ANY_KEY, max_retries=0)
            ids = {m.id for m in (await client.models.list()).data}
            assert LLAMA in ids and "cloud/openrouter/gemma-27b" in ids
            assert "cloud/openrouter/qwen3-coder" not in ids
            out = await client.chat.completions.create(
                model=LLAMA, messages=[{"role": "user", "content": "hello from 10.77.0.70"}])
            assert out.choices[0].message.content.startswith("cloud says hi")
            sent = provider.requests[-1]
            assert sent["model"] == "meta-llama/llama-3.3-70b-instruct:free"
            assert "10.77.0.70" not in json.dumps(sent)  # the sanitiser still applies
            assert provider.auth[-1] == f"Bearer {PROVIDER_KEY}"
            chunks = [c async for c in await client.chat.completions.create(
                model=LLAMA, messages=[{"role": "user", "content": "hi"}], stream=True)]
            assert "".join(c.choices[0].delta.content or "" for c in chunks
                           if c.choices) == "cloud says hi"
            with pytest.raises(openai.PermissionDeniedError) as exc:
                await client.chat.completions.create(
                    model="cloud/openrouter/qwen3-coder",
                    messages=[{"role": "user", "content": "hi"}])
            err = exc.value.body
            assert err["code"] == "cloud_alias_not_allowed"
            assert "clients.anything.cloud.aliases would have to include " \
                   "'openrouter/qwen3-coder'" in err["message"]
            calls = len(provider.requests)
            # escalation-only client (seed 000): by name is refused, the header still works
            status, _h, raw = await post(base, body("hi", model=LLAMA), HERMES)
            err = json.loads(raw)["error"]
            assert status == 403 and err["code"] == "escalation_required"
            assert "clients.hermes.cloud.mode is 'escalation'" in err["message"]
            assert "'by_name'" in err["message"]
            status, _h, _ = await post(base, body("hi", model=LLAMA),
                                       {**HERMES, "X-Hearth-Escalate": "cloud"})
            assert status == 200
            calls += 1
            # no cloud at all (the default)
            for headers in (OPENCODE, {**OPENCODE, "X-Hearth-Escalate": "cloud"}):
                status, _h, raw = await post(base, body("hi", model=LLAMA), headers)
                err = json.loads(raw)["error"]
                assert status == 403 and err["code"] == "cloud_not_allowed"
                assert "clients.opencode.cloud.mode is 'none'" in err["message"]
            # a client limited to aliases that retain nothing
            priv = {"Authorization": f"Bearer {PRIVATE_KEY}"}
            status, _h, raw = await post(base, body("hi", model="cloud/openrouter/qwen3-coder"),
                                         priv)
            assert status == 403 and "no_retention" in json.loads(raw)["error"]["message"]
            assert (await post(base, body("hi", model=LLAMA), priv))[0] == 200
            calls += 1
            assert len(provider.requests) == calls  # no refused call reached the provider
    finally:
        await provider.stop()


async def test_gateway_limits_each_alias_across_clients_before_the_provider(
        tmp_path: Path) -> None:
    provider = await StandinProvider(per_minute=3).start()  # the provider's own quota
    aliases = {"llama-70b": {"id": "meta-llama/llama-3.3-70b-instruct:free",
                             "per_minute": 2, "retains_prompts": False},
               "gemma-27b": {"id": "google/gemma-3-27b-it:free", "per_day": 1}}
    cfg = cloud_config(tmp_path, provider, aliases=aliases, clients={
        "hermes": {"cloud": {"mode": "by_name"}}})
    try:
        async with running(cfg) as (base, _st):
            assert (await post(base, body("a", model=LLAMA), ANY))[0] == 200
            assert (await post(base, body("b", model=LLAMA), HERMES))[0] == 200
            status, h, raw = await post(base, body("c", model=LLAMA), ANY)
            assert status == 429, raw
            assert json.loads(raw)["error"]["code"] == "cloud_rate_limited"
            assert "2 calls per minute" in json.loads(raw)["error"]["message"]
            assert 1 <= int(h["Retry-After"]) <= 60
            assert len(provider.requests) == 2  # the provider never saw the third
            gemma = "cloud/openrouter/gemma-27b"
            assert (await post(base, body("d", model=gemma), ANY))[0] == 200
            status, h, raw = await post(base, body("e", model=gemma), HERMES)
            assert status == 429 and "per day" in json.loads(raw)["error"]["message"]
            assert int(h["Retry-After"]) > 3600
            assert len(provider.requests) == 3
            async with aiohttp.ClientSession() as s, s.get(
                    base + "/metrics") as r:
                text = await r.text()
            assert 'hearth_cloud_limited_total{alias="llama-70b",provider="openrouter",' \
                   'window="minute"} 1.0' in text
    finally:
        await provider.stop()


def test_validation_refuses_unknown_aliases_in_client_lists() -> None:
    data = example_config().model_dump(mode="json")
    data["clients"]["hermes"]["cloud"] = {"mode": "by_name", "aliases": ["openrouter/gone"],
                                          "providers": ["nowhere"]}
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert any("clients.hermes.cloud.aliases[0]: unknown cloud alias" in e
               for e in exc.value.errors)
    assert any("clients.hermes.cloud.providers[0]: unknown provider" in e
               for e in exc.value.errors)


def test_old_boolean_cloud_switch_still_means_escalation() -> None:
    cfg = example_config()
    assert cfg.clients["hermes"].cloud.mode == "escalation"
    assert cfg.clouds["openrouter"].models["qwen3-coder"].id == "qwen/qwen3-coder:free"


async def test_a_call_without_provider_key_spends_no_limit(tmp_path: Path) -> None:
    provider = await StandinProvider().start()
    aliases = {"llama-70b": {"id": "meta-llama/llama-3.3-70b-instruct:free", "per_minute": 1}}
    cfg = cloud_config(tmp_path, provider, aliases=aliases)
    (tmp_path / "or-key").write_text("")  # no key yet
    try:
        async with running(cfg) as (base, st):
            status, _h, raw = await post(base, body("a", model=LLAMA), ANY)
            assert status == 503 and b"cloud_unconfigured" in raw
            (tmp_path / "or-key").write_text(PROVIDER_KEY)
            await st.reload(cfg)  # the key is read with the policy
            assert (await post(base, body("b", model=LLAMA), ANY))[0] == 200
            assert (await post(base, body("c", model=LLAMA), ANY))[0] == 429
            assert len(provider.requests) == 1
    finally:
        await provider.stop()
