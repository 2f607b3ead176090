"""Lab: two models on one Ollama server with ``max_loaded_models: 1`` take turns (issue
21.1/21.5): through the deployed gateway, a request for the second model unloads the
first, and both are answered, each by its own upstream.

Everything comes from the inventory under test: an always-on Linux Ollama host with at
least two models, ``max_loaded_models`` 1, and a first model that a keep-alive of its own
(or the server's) would keep loaded after its answer (with keep-alive 0 it leaves anyway,
and nothing would show the turn). The server's loaded models are put back as found.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.configs import ollama as configs
from hearth.gateway.from_inventory import upstream_name
from hearth.gateway.ollama import keep_alive_seconds
from hearth.planner.ollama_server import max_loaded_models

from .ollama_loaded import loaded, put_back, row
from .test_gateway import client_key, request

pytestmark = pytest.mark.lab


def one_at_a_time(inv: Any) -> tuple[str, Any, Any]:
    """(host, first, second): two models of an always-on server that holds one at a time."""
    for name, host in inv.hosts.items():
        serves = configs.ollama_serves(inv, name)
        if host.os != "linux" or not host.managed or host.sleep.sleeps or len(serves) < 2:
            continue
        if max_loaded_models(host) != 1:
            continue
        first, second = serves[:2]
        keep = first.keep_alive or configs.host_keep_alive(serves)
        if keep_alive_seconds(keep) != 0:
            return name, first, second
    pytest.skip("no always-on Ollama host with two models, max_loaded_models 1 and a first model "
                "that stays loaded after its answer (keep_alive not 0) in this inventory")


def ask(client: Any, inv: Any, host: str, serve: Any) -> str:
    """One chat for ``serve`` through the gateway: its answer, from that model's upstream."""
    body = {"model": serve.name, "messages": [{"role": "user", "content": "whose turn"}]}
    status, headers, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
    assert status == 200, payload
    serves = inv.hosts[host].serves
    index = next(i for i, s in enumerate(serves) if s is serve)
    assert headers.get("x-hearth-upstream") == upstream_name(host, index, len(serves)), headers
    return str(json.loads(payload)["choices"][0]["message"]["content"])


def test_two_models_take_turns_on_a_one_model_server(lab: Any, inv: Any) -> None:
    host, first, second = one_at_a_time(inv)
    client = lab.host(next(n for n, h in inv.hosts.items()
                           if h.os == "linux" and h.managed and n != inv.gateway.host and not h.sleep.sleeps))
    node = lab.host(host)
    before = loaded(node, inv, host)
    try:
        for serve, other in ((first, second), (second, first), (first, second)):
            assert ask(client, inv, host, serve), f"{serve.model}: an empty answer"
            now = loaded(node, inv, host)
            assert row(now, serve.model) is not None, f"{serve.model} not loaded after its answer: {sorted(now)}"
            assert row(now, other.model) is None, f"{other.model} still loaded beside {serve.model}: {sorted(now)}"
            assert len(now) == 1, sorted(now)
    finally:
        put_back(node, inv, host, before)
