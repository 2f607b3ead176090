"""Shared helpers for the hostile-client tests (no tests here).

A real gateway with one client key in front of a real mock upstream on 127.0.0.1, and
raw-socket clients that misbehave the ways a hostile caller would. Every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hearth.bench.mock_upstream import MockSettings, MockUpstream
from hearth.gateway.config import load_config
from hearth.gateway.server import start

from .test_reliability_helpers import TOKEN, Rig, policy

KEY = "sk-hostile-test-good-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = "/v1/chat/completions"


@contextlib.asynccontextmanager
async def keyed_rig(tmp_path: Path, limits: dict[str, Any] | None = None,
                    max_body_bytes: int = 64 * 1024) -> AsyncIterator[Rig]:
    """A gateway that requires a client key (``KEY``), in front of a mock upstream."""
    mock = await MockUpstream(MockSettings(chunk_interval_ms=1)).start()
    token = tmp_path / "admin.token"
    token.write_text(TOKEN)
    data = policy(mock.url, token)
    data["max_body_bytes"] = max_body_bytes
    data["clients"] = {"app": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}}
    data["allow_unauthenticated_loopback"] = False
    if limits:
        data["limits"] = limits
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data))
    runner, state, bound = await start(load_config(path), str(path))
    r = Rig(f"http://127.0.0.1:{bound[0][1]}", mock, state, path)
    try:
        await r.wait_usable()
        yield r
    finally:
        await runner.cleanup()
        await mock.stop()


def deep_json(levels: int) -> bytes:
    """A chat body whose ``messages`` nests ``levels`` arrays deep."""
    return (b'{"model":"bench-model","messages":' + b"[" * levels + b"]" * levels + b"}")


@functools.lru_cache(maxsize=4)
def gzip_bomb(inflated_mib: int) -> bytes:
    """A valid gzip body of zeros inflating to ``inflated_mib`` MiB (~1 KiB per MiB).

    After a full flush the deflate state is reset, so one compressed MiB of zeros
    repeats as is: the body is built without compressing the whole thing.
    """
    mib = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(mib, crc)
    trailer = struct.pack("<II", crc, (inflated_mib << 20) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + block * inflated_mib + c.flush() + trailer


def head(path: str = CHAT, length: int | None = None, extra: dict[str, str] | None = None,
         method: str = "POST") -> bytes:
    """A request head (line + headers + blank line)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def connect(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TCP connection to the gateway."""
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def read_answer(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    """Read until the peer closes or ``timeout`` passes; what arrived (b"" = nothing)."""
    buf = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                buf += chunk
                if b"\r\n\r\n" in buf and _complete(buf):
                    break
    return buf


def _complete(buf: bytes) -> bool:
    headers, _, body = buf.partition(b"\r\n\r\n")
    for line in headers.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 = none)."""
    return int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0


def header_of(answer: bytes, name: str) -> str | None:
    """A header's value in a raw HTTP answer."""
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


async def closed_within(reader: asyncio.StreamReader, timeout: float) -> bool:
    """Whether the server closes the connection within ``timeout`` (reads and drops data)."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False
