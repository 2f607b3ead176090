"""Lab: a model the inventory keeps warm for good (``keep_alive: -1``) is loaded by the
deploy, not at its first request, and stays loaded (issue 21.2).

Runs right after ``test_deploy`` (file order), before any check restarts an Ollama server
(``test_heal``). Everything comes from the inventory under test: an always-on Linux Ollama
host with such a model whose server may hold all its models at once (with more models
than ``max_loaded_models`` another model's request pushes the warm one out, as in Ollama),
the gateway and a client key. The check asks every model on that host through the
gateway, then puts the server's loaded models back as it found them.
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.configs import ollama as configs
from hearth.gateway.from_inventory import upstream_name
from hearth.planner.ollama_server import max_loaded_models

from .ollama_loaded import for_good, loaded, put_back, row
from .test_gateway import client_key, request

pytestmark = pytest.mark.lab


def warm_models(inv: Any) -> list[tuple[str, Any]]:
    """(host, serve): models kept warm for good on always-on hosts that hold them all at once."""
    found, reasons = [], []
    for name, host in inv.hosts.items():
        if host.os != "linux" or not host.managed:
            continue
        serves = configs.ollama_serves(inv, name)
        for serve in configs.warm_serves(inv, name):
            if host.sleep.sleeps:
                reasons.append(f"{name}/{serve.name} is on a sleeping host")
            elif len(serves) > max_loaded_models(host):
                reasons.append(f"{name}/{serve.name} takes turns with the host's other models")
            else:
                found.append((name, serve))
    if not found:
        pytest.skip("no Ollama model with keep_alive -1 on an always-on host that holds all its models"
                    + (f" ({'; '.join(reasons)})" if reasons else ""))
    return found


def ask(client: Any, inv: Any, host: str, serve: Any) -> None:
    """One chat for ``serve`` through the gateway, answered by that upstream."""
    body = {"model": serve.name, "messages": [{"role": "user", "content": "are you warm"}]}
    status, headers, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
    assert status == 200, payload
    index = next(i for i, s in enumerate(inv.hosts[host].serves) if s is serve)
    assert headers.get("x-hearth-upstream") == upstream_name(host, index, len(inv.hosts[host].serves))


def test_a_warm_model_is_loaded_by_the_deploy_and_stays(lab: Any, inv: Any) -> None:
    client = lab.host(next(n for n, h in inv.hosts.items()
                           if h.os == "linux" and h.managed and n != inv.gateway.host and not h.sleep.sleeps))
    for host, serve in warm_models(inv):
        node = lab.host(host)
        before = loaded(node, inv, host)
        try:
            entry = row(before, serve.model)
            assert entry is not None, f"{host}: {serve.model} (keep_alive {serve.keep_alive}) not loaded " \
                                      f"after the deploy: {sorted(before)}"
            assert for_good(entry), entry
            for other in configs.ollama_serves(inv, host):  # every model of the host, itself too
                ask(client, inv, host, other)
            entry = row(loaded(node, inv, host), serve.model)
            assert entry is not None and for_good(entry), (host, serve.model, entry)
        finally:
            put_back(node, inv, host, before)
