"""Eight misbehaving clients at once, as a process of their own (for the fault suite).

``python -m tests.gateway.hostile_flood BASE_URL SECONDS`` runs, for SECONDS, one
connection per way of misbehaving, each reconnecting whenever the gateway answers or
cuts it off, and prints one JSON object: per way, what each attempt got.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp

from .hostile import AUTH, CHAT, connect, deep_json, gzip_bomb, head, read_answer, status_of
from .test_reliability_helpers import chat


async def _slowloris(base: str) -> str:
    reader, writer = await connect(base)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        for _ in range(100):
            with contextlib.suppress(TimeoutError):
                if not await asyncio.wait_for(reader.read(1), 0.1):
                    return "cut off"
            writer.write(b"X-A: b\r\n")
            await writer.drain()
        return "never cut off"
    except ConnectionError:
        return "cut off"
    finally:
        writer.close()


async def _dribble(base: str, data: bytes, every_s: float, chunk: int) -> str:
    reader, writer = await connect(base)
    try:
        for i in range(0, len(data), chunk):
            writer.write(data[i:i + chunk])
            await writer.drain()
            if every_s:
                await asyncio.sleep(every_s)
            if reader.at_eof() or len(reader._buffer):  # type: ignore[attr-defined]
                break
        return str(status_of(await read_answer(reader, timeout=10)) or "closed")
    except ConnectionError:
        return "reset"
    finally:
        writer.close()


def _post(body: bytes, extra: dict[str, str]) -> bytes:
    return head(length=len(body), extra=extra) + body


async def _slow_body(base: str) -> str:
    body = b'{"model":"bench-model","messages":[{"role":"user","content":"' + b"x" * 400
    return await _dribble(base, head(length=len(body) + 10, extra=AUTH) + body, 0.05, 40)


async def _oversized(base: str) -> str:
    reader, writer = await connect(base)
    try:
        writer.write(head(length=1 << 30, extra=AUTH))
        blob = bytes(64 * 1024)
        for _ in range(16_384):
            writer.write(blob)
            await writer.drain()
            if len(reader._buffer) or reader.at_eof():  # type: ignore[attr-defined]
                break
        return str(status_of(await read_answer(reader, timeout=10)) or "closed")
    except ConnectionError:
        return "reset"
    finally:
        writer.close()


async def _bomb(base: str, keyed: bool) -> str:
    extra = {"Content-Encoding": "gzip", **(AUTH if keyed else {})}
    return await _dribble(base, _post(gzip_bomb(1024), extra), 0, 256 * 1024)


async def _deep(base: str) -> str:
    return await _dribble(base, _post(deep_json(50_000), AUTH), 0, 1 << 20)


async def _huge_head(base: str) -> str:
    return await _dribble(base, head(extra={"X-Big": "a" * 100_000}), 0, 1 << 20)


async def _no_key_flood(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(base + CHAT, json=chat()) as r:
        await r.read()
        return str(r.status)


async def _loop(name: str, fn: Callable[[], Awaitable[str]], stop: asyncio.Event,
                seen: dict[str, Counter[str]]) -> None:
    while not stop.is_set():
        try:
            got = await asyncio.wait_for(fn(), 30)
        except (aiohttp.ClientError, OSError) as exc:
            got = type(exc).__name__
        seen[name][got] += 1



async def run(base: str, seconds: float) -> dict[str, dict[str, int]]:
    """Run every misbehaver for ``seconds``; what each attempt got, per way."""
    gzip_bomb(1024)
    stop = asyncio.Event()
    seen: dict[str, Counter[str]] = {}
    async with aiohttp.ClientSession() as flood:
        kinds: dict[str, Callable[[], Awaitable[str]]] = {
            "slowloris head": lambda: _slowloris(base),
            "slow body": lambda: _slow_body(base),
            "oversized body": lambda: _oversized(base),
            "gzip bomb, keyed": lambda: _bomb(base, True),
            "gzip bomb, no key": lambda: _bomb(base, False),
            "deep nesting": lambda: _deep(base),
            "no-key flood": lambda: _no_key_flood(flood, base),
            "huge head": lambda: _huge_head(base),
        }
        for k in kinds:
            seen[k] = Counter()
        tasks = [asyncio.create_task(_loop(k, fn, stop, seen)) for k, fn in kinds.items()]
        await asyncio.sleep(seconds)
        stop.set()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    return {k: dict(c) for k, c in seen.items()}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], float(sys.argv[2])))), flush=True)
