"""Every route answers an error raised in its handler the OpenAI way (no middleware:
each handler is registered through ``server._guarded``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hearth.gateway import admin, server, statuspage

from .test_reliability_helpers import TOKEN, chat, rig

ROUTES = [("POST", "/v1/chat/completions"), ("POST", "/api/chat"), ("GET", "/v1/models"),
          ("GET", "/api/tags"), ("POST", "/admin/drain/chat"), ("GET", "/admin/upstreams"),
          ("GET", "/status")]


def _raise(exc: BaseException) -> Any:
    def boom(*_a: Any, **_k: Any) -> Any:
        raise exc
    return boom


def _break_everything(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    monkeypatch.setattr(server, "authenticate", _raise(exc))  # model endpoints, models, tags
    monkeypatch.setattr(admin, "_check", _raise(exc))
    monkeypatch.setattr(statuspage, "may_read", _raise(exc))


async def _answers(base: str) -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    async with aiohttp.ClientSession() as s:
        for method, path in ROUTES:
            async with s.request(method, base + path, json=chat(),
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                out.append((path, r.status, await r.json()))
    return out


async def test_an_unexpected_error_is_a_json_500_with_its_traceback_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "hearth.gateway")
    async with rig(tmp_path) as r:
        _break_everything(monkeypatch, RuntimeError("boom"))
        answers = await _answers(r.base)
    for path, status, body in answers:
        assert status == 500, (path, body)
        assert body["error"]["code"] == "internal_error", (path, body)
        assert body["error"]["type"] == "server_error", (path, body)
    logged = [rec for rec in caplog.records if rec.exc_info and "boom" in str(rec.exc_info[1])]
    assert len(logged) == len(ROUTES)


async def test_an_http_exception_keeps_its_status_as_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with rig(tmp_path) as r:
        _break_everything(monkeypatch, web.HTTPForbidden())
        answers = await _answers(r.base)
    for path, status, body in answers:
        assert status == 403, (path, body)
        assert body["error"] == {"message": "Forbidden", "type": "permission_error",
                                 "param": None, "code": None}, path
