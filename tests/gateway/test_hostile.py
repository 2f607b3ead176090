"""What a hostile client can make the gateway do (issue 17's findings), one test each.

Each of these failed before its fix: deep JSON answered 500 with a traceback, every
answer named ``Python/3.11 aiohttp/3.x``, gzip bodies were inflated before anyone was
asked who they were, a request head or body could take as long as the client liked,
one peer could open any number of connections, and ``/readyz`` listed the upstreams
to anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from .hostile import (
    AUTH,
    CHAT,
    KEY,
    closed_within,
    connect,
    deep_json,
    gzip_bomb,
    head,
    header_of,
    keyed_rig,
    read_answer,
    status_of,
)
from .test_reliability_helpers import TOKEN, Rig, chat

NATIVE_AND_OPENAI = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                     "/api/chat", "/api/generate")


async def test_deep_nesting_is_a_400_everywhere_without_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with keyed_rig(tmp_path, max_body_bytes=1 << 20) as r, aiohttp.ClientSession() as s:
        for levels in (50_000, 200):  # past the parser's recursion limit; past ours
            for path in NATIVE_AND_OPENAI:
                async with s.post(r.base + path, data=deep_json(levels),
                                  headers={**AUTH, "Content-Type": "application/json"}) as resp:
                    err = (await resp.json())["error"]
                assert resp.status == 400, (path, levels, err)
                assert err["type"] == "invalid_request_error"
                assert "nests too deeply" in err["message"]
            # (the admin API takes bodies of up to 64 KiB)
            async with s.post(r.base + "/admin/keep-warm/mock", data=deep_json(min(levels,
                                                                                 20_000)),
                              headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                err = (await resp.json())["error"]
            assert resp.status == 400 and "nests too deeply" in err["message"], err
        # nesting within the limit is an ordinary request
        ok = chat(tools=[{"type": "function", "function": {
            "name": "f", "parameters": {"a": [[[[[[[[[[{"b": [[[[1]]]]}]]]]]]]]]]}}}])
        async with s.post(r.base + CHAT, json=ok, headers=AUTH) as resp:
            assert resp.status == 200, await resp.text()
    assert r.mock.stats.requests == 1
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"
    assert not [rec for rec in caplog.records if "RecursionError" in rec.getMessage()]


async def test_unparsable_heads_are_400_without_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with keyed_rig(tmp_path) as r:
        for raw in (head(extra={"X-Big": "a" * 100_000}), b"\x16\x03\x01 not http\r\n\r\n",
                    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n"):
            reader, writer = await connect(r.base)
            writer.write(raw)
            answer = await read_answer(reader)
            writer.close()
            assert status_of(answer) in (400, 414, 431), answer[:100]
    assert not [rec for rec in caplog.records if rec.exc_info and rec.levelno >= logging.INFO]


async def test_no_server_header_naming_the_stack(tmp_path: Path) -> None:
    async with keyed_rig(tmp_path) as r, aiohttp.ClientSession() as s:
        answers = []
        async with s.post(r.base + CHAT, json=chat(), headers=AUTH) as resp:
            answers.append(resp.headers.get("Server"))
        async with s.post(r.base + CHAT, json=chat(stream=True), headers=AUTH) as resp:
            await resp.read()
            answers.append(resp.headers.get("Server"))
        async with s.get(r.base + "/healthz") as resp:
            answers.append(resp.headers.get("Server"))
        async with s.post(r.base + CHAT, json=chat()) as resp:  # 401
            answers.append(resp.headers.get("Server"))
        reader, writer = await connect(r.base)  # aiohttp's own 400 for garbage
        writer.write(b"\x16\x03\x01 not http\r\n\r\n")
        raw = await read_answer(reader)
        writer.close()
        assert status_of(raw) == 400
        answers.append(header_of(raw, "Server"))
    for a in answers:
        assert a is None or ("aiohttp" not in a.lower() and "python" not in a.lower()), a


async def test_compressed_bodies_are_refused_not_inflated(tmp_path: Path) -> None:
    bomb = gzip_bomb(64)  # ~64 KiB that would inflate to 64 MiB
    async with keyed_rig(tmp_path, max_body_bytes=1 << 20) as r, aiohttp.ClientSession() as s:
        for enc in ("gzip", "deflate", "br", "x-unknown"):
            async with s.post(r.base + CHAT, data=bomb, headers={
                    **AUTH, "Content-Type": "application/json",
                    "Content-Encoding": enc}) as resp:
                err = (await resp.json())["error"]
            assert resp.status == 415, (enc, err)
            assert err["code"] == "unsupported_content_encoding"
        async with s.post(r.base + CHAT, data=bomb, headers={  # no key: 401 first
                "Content-Type": "application/json", "Content-Encoding": "gzip"}) as resp:
            assert resp.status == 401
        async with s.post(r.base + CHAT, json=chat(), headers={
                **AUTH, "Content-Encoding": "identity"}) as resp:
            assert resp.status == 200
    assert r.mock.stats.requests == 1


async def test_unauthenticated_caller_gets_401_before_its_body_is_read(tmp_path: Path) -> None:
    async with keyed_rig(tmp_path) as r:
        # announces 1 GiB and sends 10 bytes: the 401 comes without waiting for the body
        reader, writer = await connect(r.base)
        writer.write(head(length=1 << 30) + b'{"model":')
        await writer.drain()
        t0 = time.monotonic()
        raw = await read_answer(reader, timeout=10)
        waited = time.monotonic() - t0
        writer.close()
        assert status_of(raw) == 401, raw[:200]
        print(f"[hostile] 401 for a 1 GiB body after {waited * 1000:.1f} ms")
        # a wrong key and a bad body: still the 401, so the body was never parsed
        async with aiohttp.ClientSession() as s:
            for data in (deep_json(50_000), b"{not json", gzip_bomb(4)):
                async with s.post(r.base + CHAT, data=data, headers={
                        "Authorization": "Bearer sk-wrong", "Content-Encoding": "gzip"
                        if data[:2] == b"\x1f\x8b" else "identity"}) as resp:
                    assert resp.status == 401
    assert r.mock.stats.requests == 0  # no upstream contact


async def test_a_slow_request_head_is_cut_off(tmp_path: Path) -> None:
    async with keyed_rig(tmp_path, limits={"header_timeout_s": 0.5}) as r:
        reader, writer = await connect(r.base)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        for _ in range(3):  # keep dribbling header bytes
            await asyncio.sleep(0.2)
            with contextlib.suppress(ConnectionError):
                writer.write(b"X-Slow: 1\r\n")
        assert await closed_within(reader, 5), "a slowloris head was never cut off"
        writer.close()
        # a prompt client on a kept-alive connection is not cut off while idle
        async with aiohttp.ClientSession() as s:
            for _ in range(2):
                async with s.post(r.base + CHAT, json=chat(), headers=AUTH) as resp:
                    assert resp.status == 200
                await asyncio.sleep(0.8)  # idle longer than the head deadline
        await _refusals(r, "header_timeout", at_least=1)


async def test_a_slow_body_gets_408(tmp_path: Path) -> None:
    async with keyed_rig(tmp_path, limits={"body_timeout_s": 0.5}) as r:
        reader, writer = await connect(r.base)
        writer.write(head(length=200, extra=AUTH) + b'{"model":"bench-model",')
        await writer.drain()
        raw = await read_answer(reader, timeout=5)
        writer.close()
        assert status_of(raw) == 408, raw[:200]
    assert r.mock.stats.requests == 0


async def test_connections_per_peer_are_capped(tmp_path: Path) -> None:
    async with keyed_rig(tmp_path, limits={"connections_per_peer": 3}) as r:
        held = [await connect(r.base) for _ in range(3)]
        await asyncio.sleep(0.05)
        reader, writer = await connect(r.base)
        assert await closed_within(reader, 5), "a 4th connection from one peer was kept"
        writer.close()
        for _, w in held:
            w.close()
        await asyncio.sleep(0.1)
        await _refusals(r, "connections_per_peer", at_least=1)
        async with aiohttp.ClientSession() as s, s.post(
                r.base + CHAT, json=chat(), headers=AUTH) as resp:
            assert resp.status == 200  # the slots came back


async def test_readyz_says_only_ready_to_unauthenticated_callers(tmp_path: Path) -> None:
    async with keyed_rig(tmp_path) as r, aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": f"Bearer {KEY}"},
                        {"Authorization": "Bearer wrong"}):
            async with s.get(r.base + "/readyz", headers=headers) as resp:
                assert resp.status == 200
                assert await resp.json() == {"ready": True}
        async with s.get(r.base + "/readyz",
                         headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert (await resp.json()) == {"ready": True, "usable_upstreams": ["mock"]}


async def _refusals(r: Rig, reason: str, at_least: int) -> None:
    async with aiohttp.ClientSession() as s, s.get(r.base + "/metrics") as resp:
        text = await resp.text()
    line = next((ln for ln in text.splitlines() if ln.startswith(
        f'hearth_connections_refused_total{{reason="{reason}"}}')), None)
    assert line is not None and float(line.split()[-1]) >= at_least, text[-500:]

