"""OpenAI-shaped error responses."""

from __future__ import annotations

import json

from aiohttp import web

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


def error_body(status: int, message: str, param: str | None = None,
               code: str | None = None) -> bytes:
    """The JSON bytes of ``{"error": {message, type, param, code}}``."""
    return json.dumps({"error": {"message": message, "type": _TYPES.get(status, "error"),
                                 "param": param, "code": code}}).encode()


def error_response(status: int, message: str, param: str | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None,
                   retry_after: float | None = None) -> web.Response:
    """An OpenAI-compatible JSON error response."""
    h = dict(headers or {})
    if retry_after is not None:
        h["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    return web.Response(status=status, body=error_body(status, message, param, code),
                        content_type="application/json", headers=h)


def sse_error_event(message: str, code: str = "upstream_error") -> bytes:
    """A terminal SSE event reporting a mid-stream failure (never followed by [DONE])."""
    return b"data: " + error_body(502, message, None, code) + b"\n\n"
