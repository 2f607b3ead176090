"""Lab: a keep-warm window holds on a KEEP_ALIVE=0 Ollama box (issue 21.3), through the
deployed gateway, and the per-model keep-alive reaches Ollama on OpenAI-style requests.

Everything comes from the inventory under test: the Ollama host whose server unloads a
model right after each answer (``OLLAMA_KEEP_ALIVE=0`` as the deploy sets it), one of
its models without a keep-alive of its own, the gateway, a client key.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from hearth.configs import ollama as ollama_configs
from hearth.gateway.from_inventory import upstream_name

from .admin_api import admin, keep_warm
from .test_gateway import client_key, request

pytestmark = [pytest.mark.lab, pytest.mark.slow_scenario]

WINDOW_MINUTES = 1.0


@pytest.fixture(scope="module")
def target(inv: Any) -> tuple[str, str, Any]:
    """(host, upstream, serve): a model on a KEEP_ALIVE=0 Ollama host with no keep_alive
    of its own other than 0, so only the keep-warm window can keep it loaded."""
    for name, host in inv.hosts.items():
        if host.os != "linux" or not ollama_configs.ollama_serves(inv, name):
            continue
        if ollama_configs.environment(inv, name)["OLLAMA_KEEP_ALIVE"] != "0":
            continue
        for i, serve in enumerate(host.serves):
            if serve.engine == "ollama" and serve.keep_alive in (None, "0"):
                return name, upstream_name(name, i, len(host.serves)), serve
    pytest.skip("no Ollama host with OLLAMA_KEEP_ALIVE=0 (and a model without a keep_alive "
                "of its own) in this inventory")


@pytest.fixture(scope="module")
def gateway(lab: Any, inv: Any) -> Any:
    return lab.host(inv.gateway.host)


@pytest.fixture(scope="module")
def client(lab: Any, inv: Any) -> Any:
    name = next(n for n, h in inv.hosts.items()
                if h.os == "linux" and n != inv.gateway.host and not h.sleep.sleeps)
    return lab.host(name)


def loaded(gateway: Any, inv: Any, host: str, serve: Any) -> dict[str, Any] | None:
    """The model's /api/ps entry, asked of the Ollama server over the overlay (a probe
    that loads nothing)."""
    address = ollama_configs.listen_address(inv, host)
    out = gateway.check_output(f"curl -sS -m 10 http://{address}/api/ps")
    names = {serve.model, f"{serve.model}:latest"}
    return next((m for m in json.loads(out)["models"] if m.get("name") in names), None)


def unloaded(gateway: Any, inv: Any, host: str, serve: Any, within_s: float = 30.0) -> bool:
    """Whether the model leaves the server within ``within_s`` (a real Ollama unloads
    a KEEP_ALIVE=0 model just after the answer, not with it)."""
    deadline = time.monotonic() + within_s
    while loaded(gateway, inv, host, serve) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def ask(client: Any, inv: Any, serve: Any) -> None:
    body = {"model": serve.name, "messages": [{"role": "user", "content": "keep me warm"}]}
    status, _, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
    assert status == 200, payload


def test_a_keep_warm_window_holds_and_then_lets_go(gateway: Any, client: Any, inv: Any,
                                                   target: tuple[str, str, Any]) -> None:
    host, upstream, serve = target
    keep_warm(gateway, inv, upstream, None)  # no window held from before
    ask(client, inv, serve)  # wakes the box if it sleeps; KEEP_ALIVE=0: unloaded after it
    assert unloaded(gateway, inv, host, serve), "KEEP_ALIVE=0 left the model loaded"

    result = keep_warm(gateway, inv, upstream, WINDOW_MINUTES)
    assert result.get("preload_status") == 200, result
    window_end = time.time() + WINDOW_MINUTES * 60
    assert loaded(gateway, inv, host, serve) is not None, "keep-warm did not load the model"

    ask(client, inv, serve)  # in the middle of the window
    entry = loaded(gateway, inv, host, serve)
    assert entry is not None, "a request in the keep-warm window unloaded the model"
    expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00")).timestamp()
    assert expires >= window_end - 10, (entry["expires_at"], window_end)

    deadline = time.monotonic() + WINDOW_MINUTES * 60 + 60
    while True:  # the window ends (as the gateway says), bounded
        rows = admin(gateway, inv, "/admin/upstreams")["upstreams"]
        row = next(u for u in rows if u["name"] == upstream)
        if row["keep_warm_until"] is None:
            break
        assert time.monotonic() < deadline, "the keep-warm window never ended"
        time.sleep(2)
    ask(client, inv, serve)  # after the window: the answer unloads it again
    assert unloaded(gateway, inv, host, serve), "the model stayed loaded after the window"
