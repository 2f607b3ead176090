"""The Ollama API clients use, through the real gateway to the Ollama stand-in.

The stand-in (``tests/standins/ollama/ollama.py``) runs as a process on loopback; the
official ``ollama`` Python client talks to the gateway. The endpoints open-webui calls
when it starts (``/api/version`` to verify the connection, ``/api/tags`` and
``/api/ps`` for its model list) come from open-webui's
``backend/open_webui/routers/ollama.py`` (``verify_connection``, ``get_all_models``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import aiohttp
import ollama
import pytest

from hearth.gateway.config import parse_config

from .ollama_standin import ollama_standin
from .standins import running

EMBED, CHAT = "nomic-embed-text:latest", "qwen2.5:7b"
ALL, CHAT_ONLY = "sk-ollama-all", "sk-ollama-chat-only"


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ollama_standin(tmp_path_factory.mktemp("ollama-models"), (EMBED, CHAT), keep_alive="5m",
                        ready_within_s=15, OLLAMA_MAX_LOADED_MODELS="2") as url:
        yield url


def _cfg(url: str) -> object:
    import hashlib
    sha = lambda k: hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
    return parse_config({
        "listen": ["127.0.0.1:0"],
        "upstreams": {"embedder": {"engine": "ollama", "base_url": url, "model": EMBED},
                      "talker": {"engine": "ollama", "base_url": url, "model": CHAT,
                                 "slots": 2}},
        "routes": {"embed": {"upstreams": ["embedder"]}, "chat": {"upstreams": ["talker"]}},
        "routing": {"default_route": "chat", "embedding_route": "embed"},
        "clients": {"all": {"key_sha256": sha(ALL)},
                    "chatty": {"key_sha256": sha(CHAT_ONLY), "routes": ["chat"]}},
        "health": {"interval_s": 0.2, "timeout_s": 1},
    })


def _client(base: str, key: str) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=base, headers={"Authorization": f"Bearer {key}"})


async def test_official_client_embed_embeddings_show_ps_list(standin: str) -> None:
    async with running(_cfg(standin)) as (base, _state):
        c = _client(base, ALL)
        e = await c.embed(model=EMBED, input=["first text", "second text"])
        assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 8
        assert abs(sum(v * v for v in e.embeddings[0]) - 1) < 1e-6  # /api/embed normalises
        auto = await c.embed(model="hearth/auto", input="first text")  # embedding_route
        assert auto.embeddings[0] == e.embeddings[0]
        old = await c.embeddings(model="hearth/embed", prompt="first text")
        assert len(old.embedding) == 8
        shown = await c.show(CHAT)
        assert shown.modelfile and "FROM qwen2.5:7b" in shown.modelfile
        listed = await c.list()
        assert {m.model for m in listed.models} == {EMBED, CHAT}
        await c.chat(model=CHAT, messages=[{"role": "user", "content": "hi"}])
        loaded = await c.ps()  # what the stand-in holds now, served names only
        assert {m.model for m in loaded.models} >= {CHAT, EMBED}
        with pytest.raises(ollama.ResponseError) as err:
            await c.show("not-served:1b")
        assert err.value.status_code == 404


async def test_open_webui_startup_calls(standin: str) -> None:
    """open-webui: GET /api/version with the key, then /api/tags and /api/ps."""
    auth = {"Authorization": f"Bearer {ALL}", "Content-Type": "application/json"}
    async with running(_cfg(standin)) as (base, _state), aiohttp.ClientSession() as s:
        async with s.get(base + "/api/version", headers=auth) as r:
            assert r.status == 200
            assert tuple(int(x) for x in (await r.json())["version"].split(".")) >= (0, 5, 0)
        async with s.get(base + "/api/tags", headers=auth) as r:
            assert [m["model"] for m in (await r.json())["models"]] == sorted([EMBED, CHAT])
        async with s.post(base + "/api/generate", headers=auth,
                          json={"model": CHAT, "keep_alive": "10m"}) as r:
            assert r.status == 200  # a load: /api/ps then shows when it expires
        async with s.get(base + "/api/ps", headers=auth) as r:
            models = {m["name"]: m for m in (await r.json())["models"]}
        datetime.fromisoformat(models[CHAT]["expires_at"])  # open-webui parses this


async def test_same_keys_and_route_limits(standin: str) -> None:
    async with running(_cfg(standin)) as (base, _state), aiohttp.ClientSession() as s:
        for method, path, body in (("GET", "/api/version", None), ("GET", "/api/ps", None),
                                   ("POST", "/api/embed", {"model": EMBED, "input": "x"}),
                                   ("POST", "/api/embeddings", {"model": EMBED, "prompt": "x"}),
                                   ("POST", "/api/show", {"model": CHAT})):
            for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
                async with s.request(method, base + path, json=body, headers=headers) as r:
                    assert r.status == 401, (path, headers)
        chat_only = _client(base, CHAT_ONLY)
        for call in (chat_only.embed(model=EMBED, input="x"),
                     chat_only.embed(model="hearth/auto", input="x"),
                     chat_only.embeddings(model="hearth/embed", prompt="x"),
                     chat_only.show(EMBED)):
            with pytest.raises(ollama.ResponseError) as err:
                await call
            assert err.value.status_code == 403
        assert (await chat_only.show(CHAT)).modelfile  # its own route is fine
        async with s.post(base + "/api/embed", json={"model": EMBED},
                          headers={"Authorization": f"Bearer {ALL}"}) as r:
            assert r.status == 400  # missing input, answered by the gateway
        async with s.post(base + "/api/show", json={"name": CHAT},
                          headers={"Authorization": f"Bearer {ALL}"}) as r:
            assert r.status == 200  # the older {"name": ...} body
