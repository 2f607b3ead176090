"""A relayed stream's head leaves with its first chunk, in one write (one TCP segment).

aiohttp's ``StreamResponse`` writes its head on ``prepare()`` by itself; the gateway
prepares a stream only once its first chunk is in hand, so the two go out together
(:class:`hearth.gateway.proxy.FirstChunkResponse`). Every write of the process is
recorded; the gateway's response head is the one carrying ``X-Hearth-Reason``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from aiohttp import http_writer

from .standins import example_config, running, with_upstreams
from .test_proxy import body, post, standins, stop_all


async def test_stream_head_and_first_chunk_share_one_write(
        monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    write, writelines = http_writer.StreamWriter._write, http_writer.StreamWriter._writelines

    def spy_write(self: http_writer.StreamWriter, chunk: bytes) -> None:
        writes.append(bytes(chunk))
        write(self, chunk)

    def spy_writelines(self: http_writer.StreamWriter, chunks: Iterable[bytes]) -> None:
        chunks = list(chunks)
        writes.append(b"".join(bytes(c) for c in chunks))
        writelines(self, chunks)

    monkeypatch.setattr(http_writer.StreamWriter, "_write", spy_write)
    monkeypatch.setattr(http_writer.StreamWriter, "_writelines", spy_writelines)
    stands = await standins()
    try:
        async with running(with_upstreams(example_config(), stands)) as (base, _st):
            status, h, raw = await post(base, body("tell me about owls", stream=True))
    finally:
        await stop_all(stands)
    assert status == 200 and h["Content-Type"].startswith("text/event-stream")
    assert raw.count(b"data:") >= 2 and b"[DONE]" in raw
    heads = [w for w in writes if b"X-Hearth-Reason" in w]
    assert len(heads) == 1
    head, _, first = heads[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"data:" in first  # the first chunk went out with the head
