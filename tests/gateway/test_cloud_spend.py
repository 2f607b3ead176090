"""Spend per client: token usage of every answer (local and cloud, streaming included;
the upstream's usage or counted) per client, route and model; cloud cost from the
alias's price; daily budgets answer 429."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import openai

from .cloud_provider_standin import StandinProvider
from .cloud_setup import ANY, ANY_KEY, cloud_config
from .standins import running
from .test_proxy import body, post, standins, stop_all


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _metrics(base: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
        return await r.text()


async def test_spend_counters_match_the_usage_the_upstreams_returned(tmp_path: Path) -> None:
    provider = await StandinProvider(usage=(11, 13)).start()
    stands = await standins()
    cfg = cloud_config(tmp_path, provider, stands)
    try:
        async with running(cfg) as (base, _st):
            client = openai.AsyncOpenAI(base_url=base + "/v1", api_key=ANY_KEY, max_retries=0)
            msgs = [{"role": "user", "content": "hi"}]
            await client.chat.completions.create(model="cloud/openrouter/llama-70b",
                                                 messages=msgs)
            stream = await client.chat.completions.create(
                model="cloud/openrouter/llama-70b", messages=msgs, stream=True)
            _ = [c async for c in stream]
            # local: JSON answer with usage (3 + 4), and a stream without usage (counted)
            assert (await post(base, body("hi", model="hearth/chat"), ANY))[0] == 200
            assert (await post(base, body("hi", model="hearth/chat", stream=True), ANY)
                    )[0] == 200
            text = await _metrics(base)
        cloud = {"client": "anything", "model": "cloud/openrouter/llama-70b",
                 "route": "cloud/openrouter", "source": "usage"}
        assert _metric(text, "hearth_tokens_total", kind="prompt", **cloud) == 22
        assert _metric(text, "hearth_tokens_total", kind="completion", **cloud) == 26
        # price: 2 USD / 1M prompt tokens, 4 USD / 1M completion tokens
        usd = _metric(text, "hearth_spend_usd_total", client="anything",
                      model="cloud/openrouter/llama-70b")
        assert abs(usd - 2 * (11 * 2 + 13 * 4) / 1e6) < 1e-12
        local = {"client": "anything", "route": "chat", "model": "gemma-4-31b"}
        assert _metric(text, "hearth_tokens_total", kind="prompt", source="usage",
                       **local) == 3
        assert _metric(text, "hearth_tokens_total", kind="completion", source="usage",
                       **local) == 4
        # the stand-in streamed two content events and no usage: counted as 2 tokens
        assert _metric(text, "hearth_tokens_total", kind="completion", source="counted",
                       **local) == 2
    finally:
        await provider.stop()
        await stop_all(stands)


async def test_daily_token_budget_answers_429_when_spent(tmp_path: Path) -> None:
    provider = await StandinProvider(usage=(11, 13)).start()
    stands = await standins()
    cfg = cloud_config(tmp_path, provider, stands,
                       clients={"anything": {"budget": {"tokens_per_day": 30}}})
    try:
        async with running(cfg) as (base, _st):
            llama = body("hi", model="cloud/openrouter/llama-70b")
            assert (await post(base, llama, ANY))[0] == 200  # 24 tokens
            assert (await post(base, body("hi", model="hearth/chat"), ANY))[0] == 200  # +7
            status, h, raw = await post(base, llama, ANY)
            assert status == 429 and b"budget_exceeded" in raw
            assert b"clients.anything.budget.tokens_per_day" in raw
            assert int(h["Retry-After"]) <= 86400
            status, _h, _ = await post(base, body("hi", model="hearth/chat"), ANY)
            assert status == 429  # local answers count toward the budget too
            assert len(provider.requests) == 1
    finally:
        await provider.stop()
        await stop_all(stands)


async def test_daily_money_budget_counts_the_alias_price(tmp_path: Path) -> None:
    provider = await StandinProvider(usage=(11, 13)).start()  # 74e-6 USD per call
    stands = await standins()
    cfg = cloud_config(tmp_path, provider, stands,
                       clients={"anything": {"budget": {"usd_per_day": 0.0001}}})
    try:
        async with running(cfg) as (base, _st):
            llama = body("hi", model="cloud/openrouter/llama-70b")
            assert (await post(base, llama, ANY))[0] == 200
            assert (await post(base, llama, ANY))[0] == 200  # 148e-6 spent now
            status, _h, raw = await post(base, llama, ANY)
            assert status == 429 and b"clients.anything.budget.usd_per_day" in raw
            assert len(provider.requests) == 2
    finally:
        await provider.stop()
        await stop_all(stands)


def test_usage_is_found_without_decoding_the_whole_answer() -> None:
    from hearth.gateway.spend import usage_in_json, usage_in_stream_tail

    raw = (b'{"choices":[{"message":{"content":"the word \\"usage\\": {} and usage"}}],'
           b'"usage": {"prompt_tokens": 3, "completion_tokens": 4}, "note": "usage"}')
    assert usage_in_json(raw) == {"prompt_tokens": 3, "completion_tokens": 4}
    assert usage_in_json(b'{"usage": null}') is None
    assert usage_in_json(b'not json "usage": {') is None
    assert usage_in_json(b'{"done":true,"prompt_eval_count":5,"eval_count":6}') == {
        "prompt_tokens": 5, "completion_tokens": 6}
    tail = (b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n'
            b"data: [DONE]\n\n")
    assert usage_in_stream_tail(tail) == {"prompt_tokens": 1, "completion_tokens": 2}
