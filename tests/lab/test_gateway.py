"""Lab: the gateway role, and a request through it from another machine to an upstream.

The client is another machine on the overlay (as Cursor or Open WebUI would be);
names, ports, routes and keywords all come from the inventory under test. The last
test puts a sleeping box to sleep and lets the gateway wake it with a real magic packet.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import gateway as configs
from hearth.gateway.from_inventory import admin_token_path, upstream_name
from hearth.inventory import resolve_secret

from .admin_api import upstream_state

pytestmark = pytest.mark.lab

# Engines a hearth role installs and runs on a Linux host: requests to them must be answered.
DEPLOYED_ENGINES = {"ollama", "vllm"}


@pytest.fixture(scope="module")
def gateway(lab: Any, inv: Any) -> Any:
    return lab.host(inv.gateway.host)


@pytest.fixture(scope="module")
def client(lab: Any, inv: Any) -> Any:
    """Another Linux machine of the lab: it reaches the gateway over the overlay."""
    name = next(n for n, h in inv.hosts.items() if h.os == "linux" and n != inv.gateway.host and not h.sleep.sleeps)
    return lab.host(name)


def url(inv: Any, path: str) -> str:
    return f"http://{inv.hosts[inv.gateway.host].overlay_ip}:{inv.gateway.port}{path}"


def request(
    node: Any, inv: Any, path: str, key: str | None, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], str]:
    """curl on ``node``: (status, lower-cased headers, body)."""
    args = ["curl", "-sS", "-m", "150", "-D", "-", url(inv, path)]
    if key:
        args += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = node.check_output(" ".join(shlex.quote(a) for a in args))
    head, _, payload = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, payload


def client_key(inv: Any) -> str:
    """The key of a client the inventory lets use every route."""
    unrestricted = [c for c in inv.clients.values() if c.routes is None]
    if not unrestricted:
        pytest.skip("no client in this inventory may use every route")
    return resolve_secret(unrestricted[0].key)


def deployed_serves(inv: Any) -> list[tuple[str, str, Any]]:
    """(host, upstream name, serve) for every model a hearth role runs on a Linux host."""
    out = []
    for name, host in inv.hosts.items():
        for i, serve in enumerate(host.serves):
            if host.os == "linux" and serve.engine in DEPLOYED_ENGINES:
                out.append((name, upstream_name(name, i, len(host.serves)), serve))
    if not out:
        pytest.skip("no model in this inventory runs on an engine a hearth role installs")
    return out


def keyword_for_a_deployed_route(inv: Any) -> tuple[str, str]:
    """(keyword, route): a keyword of exactly one bucket whose route a deployed model serves."""
    if inv.routing is None:
        pytest.skip("no routing policy in this inventory")
    served = {route for _, _, serve in deployed_serves(inv) for route in serve.routes}
    counts: dict[str, int] = {}
    for bucket in inv.routing.buckets.values():
        for word in bucket.keywords:
            counts[word] = counts.get(word, 0) + 1
    for bucket in inv.routing.buckets.values():
        if bucket.route in served:
            for word in bucket.keywords:
                if counts[word] == 1:
                    return word, bucket.route
    pytest.skip("no bucket keyword leads to a route a deployed model serves")


def test_service_runs_as_its_own_user_from_its_venv(gateway: Any) -> None:
    service = gateway.service("hearth-gateway")
    assert service.is_enabled and service.is_running
    assert gateway.user(configs.USER).shell == "/usr/sbin/nologin"
    assert configs.USER in gateway.check_output("ps -o user= -C python3 -o args= | grep 'hearth.gateway serve' || "
                                                 "ps -eo user,args | grep '[h]earth.gateway serve'")


def test_listens_on_loopback_and_overlay_and_lan_only_if_asked(gateway: Any, inv: Any) -> None:
    port = inv.gateway.port
    host = inv.hosts[inv.gateway.host]
    assert gateway.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert gateway.socket(f"tcp://{host.overlay_ip}:{port}").is_listening
    assert not gateway.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert gateway.socket(f"tcp://{host.address}:{port}").is_listening == inv.gateway.lan.listen


def test_secrets_are_0600_and_the_policy_holds_only_hashes(gateway: Any, inv: Any) -> None:
    with gateway.sudo():
        token = gateway.file(admin_token_path())
        assert token.mode == 0o600 and token.user == configs.USER
        assert gateway.file(f"{configs.ETC}/secrets").mode == 0o700
        policy = gateway.file(configs.POLICY)
        assert policy.mode == 0o640 and policy.group == configs.USER
        text = policy.content_string
    key = client_key(inv)
    assert key not in text
    assert hashlib.sha256(key.encode()).hexdigest() in text
    assert resolve_secret(inv.gateway.admin_token) not in text


def test_secrets_came_through_a_private_staging_directory_not_tmp(gateway: Any, inv: Any) -> None:
    """pyinfra with sudo stages uploads as the login user; hearth stages them in a 0700 folder."""
    from hearth.operations.files import STAGING

    with gateway.sudo():
        staging = gateway.file(STAGING)
        assert staging.is_directory and staging.mode == 0o700 and staging.user == inv.ssh.user
        assert gateway.check_output(f"ls -A {STAGING}") == ""  # every staged upload was removed
        token = resolve_secret(inv.gateway.admin_token)
        leaked = gateway.run(f"grep -rlF -- {shlex.quote(token)} /tmp /var/tmp")
    assert leaked.stdout.strip() == ""


def test_live_unit_exposure_is_at_most_2(gateway: Any) -> None:
    """The hardening holds on the running unit, not only on paper (systemd-analyze on the host)."""
    with gateway.sudo():
        out = gateway.check_output("systemd-analyze security --no-pager hearth-gateway.service")
    exposure = float(out.rsplit("Overall exposure level for hearth-gateway.service:", 1)[1].split()[0])
    assert exposure <= 2.0, out


def test_no_key_is_refused_openai_style(client: Any, inv: Any) -> None:
    status, _, body = request(client, inv, "/v1/models", None)
    assert status == 401
    assert json.loads(body)["error"]["type"]


def test_models_lists_route_aliases(client: Any, inv: Any) -> None:
    status, _, body = request(client, inv, "/v1/models", client_key(inv))
    assert status == 200
    ids = {model["id"] for model in json.loads(body)["data"]}
    prefix = inv.routing.alias_prefix if inv.routing else "hearth"
    expected = {f"{prefix}/auto"} | {f"{prefix}/{route}" for route in inv.route_upstreams()}
    expected |= {serve.name for _, serve in inv.serves()}
    assert expected <= ids, expected - ids


def test_each_deployed_model_answers_from_another_machine(client: Any, inv: Any) -> None:
    for _host, upstream, serve in deployed_serves(inv):
        body = {"model": serve.name, "messages": [{"role": "user", "content": "hello from the overlay"}]}
        status, headers, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
        assert status == 200, (serve.name, payload)
        assert headers["x-hearth-upstream"] == upstream
        answer = json.loads(payload)
        assert answer["choices"][0]["message"]["content"]
        assert answer["model"] == serve.name


def test_auto_routes_by_the_inventory_keywords(client: Any, inv: Any) -> None:
    word, route = keyword_for_a_deployed_route(inv)
    prefix = inv.routing.alias_prefix
    body = {"model": f"{prefix}/auto", "messages": [{"role": "user", "content": f"please {word} this"}]}
    status, headers, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
    assert status == 200, payload
    assert headers["x-hearth-route"] == route
    upstreams = {up for _, up, serve in deployed_serves(inv) if route in serve.routes}
    assert headers["x-hearth-upstream"] in upstreams


def test_a_request_wakes_the_sleeping_box_with_one_magic_packet(lab: Any, gateway: Any, client: Any, inv: Any) -> None:
    if not lab.local:
        pytest.skip("puts a lab machine to sleep")
    from hearth.lab import machine as lab_machine
    from hearth.lab import power_cli
    from hearth.lab.state import lab_root, load_record

    sleepers = [(h, up, s) for h, up, s in deployed_serves(inv) if inv.hosts[h].sleep.sleeps]
    if not sleepers:
        pytest.skip("no sleeping host serves a model in this inventory")
    sleeper, upstream, serve = sleepers[0]
    record = load_record(lab_root())
    assert record is not None
    power_cli.sleep(record, record.machines[sleeper])
    assert lab_machine.power_state(record.machines[sleeper]) == "asleep"
    deadline = time.monotonic() + 60
    while upstream_state(gateway, inv, upstream) != "asleep":  # the prober notices, never waking it
        assert time.monotonic() < deadline, "the gateway never marked the sleeping upstream asleep"
        time.sleep(1)
    assert lab_machine.power_state(record.machines[sleeper]) == "asleep"

    log = Path(lab_root()) / "daemon.log"
    before = log.read_text().count(f"magic packet for {inv.hosts[sleeper].mac}") if log.exists() else 0
    body = {"model": serve.name, "messages": [{"role": "user", "content": "implement a function"}]}
    status, headers, payload = request(client, inv, "/v1/chat/completions", client_key(inv), body)
    assert status == 200, payload
    assert headers["x-hearth-upstream"] == upstream
    assert lab_machine.power_state(record.machines[sleeper]) == "on"
    if log.exists():
        assert log.read_text().count(f"magic packet for {inv.hosts[sleeper].mac}") - before == 1
