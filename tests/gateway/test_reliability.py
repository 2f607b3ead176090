"""Gateway reliability under failure: a real gateway in front of real mock upstreams.

For each scenario: no crash, no leaked in-flight counter (``/admin/upstreams``
returns to 0), no lost request that should have succeeded (every answer the
upstream completed reaches the client as a 200), and the right status for the rest.
Each prints a ``[reliability] name: sent=N status=count ...`` line. No timing
assertions; every loop is bounded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from hearth.bench.mock_upstream import MockSettings, MockUpstream

from .test_reliability_helpers import Outcome, call, chat, rig, tally


async def test_upstream_killed_mid_stream(tmp_path: Path) -> None:
    settings = MockSettings(chunks=6, chunk_interval_ms=1, kill_after=2)
    async with rig(tmp_path, settings, slots=16) as r, aiohttp.ClientSession() as s:
        outs = await asyncio.gather(*(call(s, r.base, chat(True, "kill_midstream"))
                                      for _ in range(10)))
        c = tally("killed mid-stream", outs)
        # Headers were sent before the kill: 200, then a terminal SSE error, no [DONE].
        # A request arriving after a kill marked the upstream down gets 503.
        assert set(c) <= {200, 503} and c[200] >= 1
        started = [o for o in outs if o.status == 200]
        assert all(o.error_event and not o.done and o.chunks == 2 for o in started)
        assert r.mock.stats.killed == c[200]
        await r.assert_no_leak()
        await r.wait_usable()
        ok = await call(s, r.base, chat(True))
        assert ok.status == 200 and ok.done and ok.chunks == 6


async def test_upstream_process_dies_and_comes_back(tmp_path: Path) -> None:
    settings = MockSettings(chunks=6, chunk_interval_ms=1)
    async with rig(tmp_path, settings) as r, aiohttp.ClientSession() as s:
        port = r.mock.port
        streams = [asyncio.create_task(call(s, r.base, chat(True, "endless")))
                   for _ in range(5)]
        for _ in range(500):
            if r.mock.stats.active == 5:
                break
            await asyncio.sleep(0.01)
        await r.mock.stop()  # the upstream process goes away with streams open
        cut = await asyncio.gather(*streams)
        down = [await call(s, r.base, chat()) for _ in range(5)]
        tally("upstream died (open streams)", cut)
        c = tally("upstream died (new requests)", down)
        assert all(o.status == 200 and not o.done and o.error_event for o in cut)
        assert set(c) <= {502, 503}
        await r.assert_no_leak()
        r.mock = await MockUpstream(settings, port).start()  # back on the same port
        await r.wait_usable()
        back = [await call(s, r.base, chat()) for _ in range(5)]
        assert tally("upstream back", back) == {200: 5}
        await r.mock.stop()


async def test_upstream_hanging(tmp_path: Path) -> None:
    async with rig(tmp_path) as r, aiohttp.ClientSession() as s:
        outs = await asyncio.gather(*(call(s, r.base, chat(i % 2 == 0, "hang"))
                                      for i in range(8)))
        c = tally("upstream hanging", outs)
        assert c == {504: 8}
        await r.assert_no_leak()
        await r.wait_mock_idle()  # the gateway dropped every hung upstream connection
        assert r.mock.stats.disconnects == 8
        await r.wait_usable()
        assert (await call(s, r.base, chat())).status == 200


async def test_upstream_flapping(tmp_path: Path) -> None:
    async with rig(tmp_path, MockSettings(mode="flap")) as r, aiohttp.ClientSession() as s:
        outs: list[Outcome] = []
        for _ in range(30):
            o = await call(s, r.base, chat())
            outs.append(o)
            if o.status != 200:
                await r.wait_usable()
        c = tally("upstream flapping", outs)
        assert set(c) <= {200, 502, 503}
        assert c[200] >= 1 and c[502] >= 1
        # nothing the upstream answered was lost on the way back
        assert c[200] == r.mock.stats.completed
        assert c[502] == r.mock.stats.failed
        await r.assert_no_leak()


async def test_ten_times_the_cap_busy(tmp_path: Path) -> None:
    settings = MockSettings(latency_ms=50)
    async with rig(tmp_path, settings, slots=4) as r, aiohttp.ClientSession() as s:
        outs = await asyncio.gather(*(call(s, r.base, chat()) for _ in range(40)))
        c = tally("10x cap, on_busy=busy", outs)
        assert set(c) <= {200, 429}
        assert c[200] >= 4 and c[200] == r.mock.stats.completed
        assert r.mock.stats.max_active <= 4
        await r.assert_no_leak()


async def test_ten_times_the_cap_queued(tmp_path: Path) -> None:
    settings = MockSettings(latency_ms=5)
    async with rig(tmp_path, settings, slots=4, on_busy="queue", queue_max=36) as r, \
            aiohttp.ClientSession() as s:
        outs = await asyncio.gather(*(call(s, r.base, chat(i % 2 == 0)) for i in range(40)))
        c = tally("10x cap, on_busy=queue", outs)
        assert c == {200: 40}
        assert r.mock.stats.max_active <= 4
        assert all(o.done for o in outs if o.chunks)
        await r.assert_no_leak()


async def test_client_disconnects_under_load(tmp_path: Path) -> None:
    # Thirty endless streams keep the machine busy: a probe answered late must not mark
    # the upstream down here (this test is about disconnects, not health).
    patient = {"interval_s": 0.05, "timeout_s": 10, "cooldown_s": 0.05, "down_after": 3}
    async with rig(tmp_path, MockSettings(chunk_interval_ms=2), slots=64,
                   health=patient) as r, aiohttp.ClientSession() as s:
        doomed = [asyncio.create_task(call(s, r.base, chat(i % 2 == 0,
                                                           "endless" if i % 2 == 0 else "hang")))
                  for i in range(30)]
        for _ in range(500):
            if r.mock.stats.active >= 30:
                break
            await asyncio.sleep(0.01)
        good = [asyncio.create_task(call(s, r.base, chat(i % 2 == 0))) for i in range(20)]
        for t in doomed:
            t.cancel()
        await asyncio.gather(*doomed, return_exceptions=True)
        outs = await asyncio.gather(*good)
        c = tally("client disconnects under load (survivors)", outs)
        print(f"[reliability] client disconnects under load: cancelled={len(doomed)} "
              f"upstream_saw_close={r.mock.stats.disconnects}")
        assert c == {200: 20}, outs[0].body[:300]
        await r.wait_mock_idle()
        assert r.mock.stats.disconnects == 30  # every cancel reached the upstream
        await r.assert_no_leak()


async def _raw(base: str, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection; return whatever comes back (bounded)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    except TimeoutError:
        return b""
    finally:
        writer.close()


async def test_malformed_oversized_truncated_and_wrong_types(tmp_path: Path) -> None:
    url = "/v1/chat/completions"
    big = b'{"model":"bench-model","messages":[{"role":"user","content":"' + b"x" * 70_000 + b'"}]}'
    cases: list[tuple[str, bytes, dict[str, str], set[int]]] = [
        ("not json", b"{nope", {}, {400}),
        ("empty", b"", {}, {400}),
        ("json array", b"[1,2]", {}, {400}),
        ("json string", b'"hi"', {}, {400}),
        ("non-utf8", b"\xff\xfe\x00", {}, {400}),
        ("no messages", b'{"model":"bench-model"}', {}, {400}),
        ("messages not list", b'{"model":"bench-model","messages":"hi"}', {}, {400}),
        ("model not string", b'{"model":5,"messages":[]}', {}, {400}),
        ("stream not bool", b'{"model":"bench-model","messages":[],"stream":"yes"}', {}, {400}),
        ("unknown model", b'{"model":"nope","messages":[]}', {}, {404}),
        ("oversized", big, {}, {413}),
        ("wrong content type", b'{"model":"bench-model","messages":[]}',
         {"Content-Type": "text/plain"}, {200, 415}),
        ("form content type", b"a=b", {"Content-Type": "application/x-www-form-urlencoded"},
         {400, 415}),
    ]
    async with rig(tmp_path) as r, aiohttp.ClientSession() as s:
        got: list[Outcome] = []
        for name, data, headers, want in cases:
            async with s.post(r.base + url, data=data,
                              headers={"Content-Type": "application/json", **headers}) as resp:
                body = await resp.read()
            got.append(Outcome(resp.status, body))
            assert resp.status in want, f"{name}: {resp.status} {body[:200]!r}"

        async def chunked() -> bytes:  # oversized with no Content-Length
            yield big[:40_000]
            yield big[40_000:]

        async with s.post(r.base + url, data=chunked(),
                          headers={"Content-Type": "application/json"}) as resp:
            got.append(Outcome(resp.status, await resp.read()))
            assert resp.status == 413
        # truncated: Content-Length promises more than is sent, then the client half-closes
        head = (f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 200\r\n\r\n").encode()
        ans = await _raw(r.base, head + b'{"model":"bench-model","mess')
        got.append(Outcome(int(ans.split()[1]) if ans.startswith(b"HTTP/") else 0, ans))
        assert not ans.startswith(b"HTTP/1.1 5")
        # garbage request line
        ans = await _raw(r.base, b"\x16\x03\x01 not http at all\r\n\r\n")
        got.append(Outcome(int(ans.split()[1]) if ans.startswith(b"HTTP/") else 0, ans))
        assert not ans.startswith(b"HTTP/1.1 5")
        async with s.get(r.base + url) as resp:
            got.append(Outcome(resp.status, await resp.read()))
            assert resp.status in (404, 405)
        tally("malformed/oversized/truncated/wrong type", got)
        assert r.mock.stats.requests <= 1  # only the lenient content-type case may pass
        ok = await call(s, r.base, chat())
        assert ok.status == 200
        await r.assert_no_leak()
