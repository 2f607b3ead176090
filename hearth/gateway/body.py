"""Reading and parsing a client's request body, with every cost bounded.

A body is read only after the caller is authenticated (the handlers check the key or
the admin token first), never inflated (a ``Content-Encoding`` other than identity is
refused with 415 before a byte is read; the server does not decompress either, see
:mod:`hearth.gateway.guard`), read within ``limits.body_timeout_s`` (else 408) and up
to the body limit (else 413), and parsed to a nesting depth of at most
:data:`MAX_JSON_DEPTH` (else 400).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web

from .proxy import Deadline

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects accepted in a client's JSON body (the top-level
object counts as 1). OpenAI and Ollama request bodies, tool schemas included, stay far
below; anything deeper is refused before a parser or sanitiser recursion can fail."""

_IDENTITY = frozenset({"", "identity"})
_DECODER = json.JSONDecoder()  # what json.loads uses when given no options


class Reject(Exception):
    """Answer the request with an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.retry_after = retry_after


def check_encoding(request: web.Request) -> None:
    """415 for a compressed (or otherwise encoded) body: hearth never inflates one."""
    enc = request.headers.get(hdrs.CONTENT_ENCODING)
    if enc is not None and enc.strip().lower() not in _IDENTITY:
        raise Reject(415, f"Content-Encoding {enc[:40]!r} is not accepted: send the body "
                          "uncompressed", None, "unsupported_content_encoding")


def arrived_body(request: web.Request, limit: int) -> bytes | None:
    """The body if all of it arrived with the head (announced by Content-Length), taken
    as buffered without awaiting anything; None when the rest must be waited for
    (:func:`wait_body`). 415 if encoded, 413 past ``limit``."""
    check_encoding(request)
    cl = request.content_length
    if cl is not None and cl > limit:
        raise Reject(413, f"Request body of {cl} bytes exceeds the limit of {limit} bytes",
                     None, "request_too_large")
    if cl is not None and request.content.is_eof():
        # request.read() would copy it twice and go round its read loop once more
        return request.content.read_nowait()
    return None


async def wait_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The body :func:`arrived_body` could not take yet: 413 past ``limit``, 408 after
    ``timeout_s``."""
    cl = request.content_length
    try:
        with Deadline(timeout_s):
            if cl is not None:
                return await request.read()  # aiohttp reads exactly Content-Length bytes
            buf = bytearray()  # chunked: no length announced, so count as it comes
            async for chunk in request.content.iter_any():
                buf += chunk
                if len(buf) > limit:
                    raise Reject(413, f"Request body exceeds the limit of {limit} bytes",
                                 None, "request_too_large")
            return bytes(buf)
    except TimeoutError:
        raise Reject(408, f"The request body did not arrive within {timeout_s:g} s", None,
                     "request_timeout") from None


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The whole request body; 415 if encoded, 413 past ``limit``, 408 after ``timeout_s``."""
    raw = arrived_body(request, limit)
    return raw if raw is not None else await wait_body(request, limit, timeout_s)


def _deeper_than(obj: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            return True
        for v in (o.values() if isinstance(o, dict) else o):
            if isinstance(v, (dict, list)):
                stack.append((v, d + 1))
    return False


def _too_deep() -> Reject:
    return Reject(400, f"Request body nests too deeply (more than {MAX_JSON_DEPTH} levels "
                       "of arrays/objects)", None, "invalid_json")


def _loads(raw: bytes) -> Any:
    """``json.loads(raw)``, without its encoding detection for the usual body.

    A body starting with ``{`` and no NUL byte after it is one ``json.loads`` takes for
    UTF-8 (no BOM, not UTF-16/32); it is decoded as ``json.loads`` would decode it.
    Anything else goes through ``json.loads`` itself.
    """
    if raw[:1] == b"{" and raw[1:2] != b"\x00":
        return _DECODER.decode(raw.decode("utf-8", "surrogatepass"))
    return json.loads(raw)


def parse_json(raw: bytes) -> dict[str, Any]:
    """Parse a request body; 400 if it is not JSON, not an object, or nests too deeply."""
    try:
        data = _loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Reject(400, f"Request body is not valid JSON: {exc}", None,
                     "invalid_json") from None
    if not isinstance(data, dict):
        raise Reject(400, "Request body must be a JSON object", None, "invalid_request")
    # a body cannot nest deeper than it has brackets (in UTF-8/16/32 alike): the
    # walk runs only for bodies with many containers
    if (raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
            and _deeper_than(data, MAX_JSON_DEPTH)):
        raise _too_deep()
    return data
