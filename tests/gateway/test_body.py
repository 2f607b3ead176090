"""The request body: read once as it arrived, parsed exactly as ``json.loads`` would."""

from __future__ import annotations

import codecs
import json
from typing import Any
from unittest import mock

import pytest
from aiohttp import streams
from aiohttp.test_utils import make_mocked_request

from hearth.gateway.body import Reject, _loads, arrived_body, parse_json, read_body

OBJ: dict[str, Any] = {"model": "m", "n": [1, 2.5, None, True],
                       "messages": [{"role": "user", "content": "h\u00e9 \u2603 \U0001f600"}]}
TEXT = json.dumps(OBJ, ensure_ascii=False)


@pytest.mark.parametrize("raw", [
    TEXT.encode(),                                      # UTF-8, the usual body
    json.dumps(OBJ).encode(),                           # ASCII with \u escapes
    b" \n" + TEXT.encode(),                             # leading whitespace: json.loads's path
    codecs.BOM_UTF8 + TEXT.encode(),                    # UTF-8 with a BOM
    TEXT.encode("utf-16-le"), TEXT.encode("utf-16-be"), TEXT.encode("utf-16"),
    TEXT.encode("utf-32-le"), TEXT.encode("utf-32-be"), TEXT.encode("utf-32"),
    b'{"a":"\\ud800"}',                                 # a lone surrogate escape
    b"{", b"{}", b'{"a":1}', b'{"a":1} x', b'{"a":NaN}',
    b'{"a":"\xed\xa0\x80"}',                            # a surrogate encoded as UTF-8
    b'{"a":"\xff"}',                                    # not UTF-8 at all
])
def test_loads_is_json_loads(raw: bytes) -> None:
    """The same object, or the same kind of error, as ``json.loads`` for every encoding."""
    try:
        want: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        with pytest.raises(type(exc)):
            _loads(raw)
        return
    assert _loads(raw) == want


@pytest.mark.parametrize("raw", [b'{"a":"\xff"}', b'{"a":1} x', b"{", b" [1]"])
def test_bad_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(Reject) as err:
        parse_json(raw)
    assert err.value.status == 400


def _request(chunks: list[bytes], length: int | None) -> Any:
    protocol = mock.Mock(_reading_paused=False)
    payload = streams.StreamReader(protocol, 2**16, loop=mock.Mock())
    for c in chunks:
        payload.feed_data(c)
    payload.feed_eof()
    headers = {"Content-Length": str(length)} if length is not None else {}
    return make_mocked_request("POST", "/v1/chat/completions", headers=headers,
                               payload=payload)


async def test_a_body_that_arrived_in_pieces_is_read_whole() -> None:
    parts = [b'{"model":"m",', b'"messages":[', b"]}"]
    body = b"".join(parts)
    assert await read_body(_request(parts, len(body)), 1 << 20, 5) == body
    assert await read_body(_request(parts, None), 1 << 20, 5) == body  # chunked
    assert arrived_body(_request(parts, len(body)), 1 << 20) == body  # no await needed
    assert arrived_body(_request(parts, None), 1 << 20) is None  # chunked: counted as it comes
    with pytest.raises(Reject) as err:
        arrived_body(_request(parts, len(body)), len(body) - 1)
    assert err.value.status == 413


async def test_an_empty_body_reads_empty() -> None:
    assert await read_body(_request([], 0), 1 << 20, 5) == b""
