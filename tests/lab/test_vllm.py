"""Lab: the vLLM role (the vLLM stand-in, pip-installed from the lab's package index).

Everything expected is derived from the inventory under test: hosts, units, users,
command lines, addresses, ports, upstream names. The session's converge +
idempotence cycle is the role's first run (units started one at a time, each
waited for) and a second run with zero changes. Start order and restarts:
tests/lab/test_vllm_order.py.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest

from hearth.configs import vllm as configs
from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import admin_token_path, upstream_name
from hearth.inventory import Inventory, load_inventory, resolve_secret
from tests.lab.packets import tcp_open_from, tcp_open_from_here

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    return load_inventory(lab.inventory, group_defaults())


@pytest.fixture(scope="module")
def vllm_hosts(inv: Inventory) -> list[str]:
    hosts = vllm_hosts_of(inv)
    if not hosts:
        pytest.skip("no Linux host serves a vLLM model in this inventory")
    return hosts


def vllm_hosts_of(inv: Inventory) -> list[str]:
    return [n for n in inv.linux_hosts() if configs.vllm_serves(inv, n)]


def show(node: Any, unit: str, *props: str) -> dict[str, str]:
    """``systemctl show`` properties of a unit as a dict."""
    out = node.check_output(f"systemctl show {' '.join(f'-p {p}' for p in props)} {shlex.quote(unit)}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main_pid(node: Any, unit: str) -> int:
    return int(show(node, unit, "MainPID")["MainPID"])


def cmdline(node: Any, pid: int) -> list[str]:
    return node.check_output(f"sudo cat /proc/{pid}/cmdline | tr '\\0' '\\n'").splitlines()


def upstreams_of(inv: Inventory, engines: set[str]) -> dict[str, tuple[str, Any]]:
    """Upstream name -> (host, serve) for the models hearth runs with these engines."""
    out = {}
    for name in inv.linux_hosts():
        serves = inv.hosts[name].serves
        for i, serve in enumerate(serves):
            if serve.engine in engines:
                out[upstream_name(name, i, len(serves))] = (name, serve)
    return out


def test_units_are_the_rendered_ones_enabled_and_running_as_vllm(lab: Any, inv: Inventory,
                                                                 vllm_hosts: list[str]) -> None:
    for name in vllm_hosts:
        node = lab.host(name)
        assert node.user(configs.USER).shell == "/usr/sbin/nologin"
        for config in configs.host_files(inv, name):
            assert node.file(config.dest).content_string == config.render(), config.dest
        for serve in configs.vllm_serves(inv, name):
            unit = configs.unit_name(serve)
            service = node.service(unit)
            assert service.is_enabled and service.is_running, f"{name}: {unit}"
            pid = main_pid(node, unit)
            assert node.check_output(f"ps -o user= -p {pid}").strip() == configs.USER


def test_command_line_is_exactly_the_inventorys(lab: Any, inv: Inventory, vllm_hosts: list[str]) -> None:
    for name in vllm_hosts:
        node = lab.host(name)
        version = str(configs.settings(inv, name)["vllm_version"])
        for serve in configs.vllm_serves(inv, name):
            argv = cmdline(node, main_pid(node, configs.unit_name(serve)))
            expected = configs.command(inv, name, serve, version)
            # the console script runs under the venv's python: python, then the script and vLLM's argv
            assert argv[0].startswith(f"{configs.VENV}/bin/python"), argv
            assert argv[1:] == expected, (argv, expected)


def test_installed_from_the_index_at_the_pinned_version(lab: Any, inv: Inventory, vllm_hosts: list[str]) -> None:
    for name in vllm_hosts:
        version = str(configs.settings(inv, name)["vllm_version"])
        assert lab.host(name).check_output(f"{configs.VENV}/bin/vllm --version").strip() == version


def test_listens_only_on_the_overlay_address(lab: Any, inv: Inventory, vllm_hosts: list[str]) -> None:
    for name in vllm_hosts:
        node, host = lab.host(name), inv.hosts[name]
        for serve in configs.vllm_serves(inv, name):
            port = serve.listen_port
            listening = node.check_output(f"ss -Hltn 'sport = :{port}'").splitlines()
            local = sorted(line.split()[3] for line in listening)
            assert local == [f"{host.overlay_ip}:{port}"], (serve.name, listening)


def test_port_answers_over_the_overlay_only(lab: Any, inv: Inventory, vllm_hosts: list[str]) -> None:
    for name in vllm_hosts:
        host = inv.hosts[name]
        peer = lab.host(next(n for n in inv.linux_hosts() if n != name and not inv.hosts[n].sleep.sleeps))
        for serve in configs.vllm_serves(inv, name):
            port = serve.listen_port
            assert tcp_open_from(peer, str(host.overlay_ip), port), f"{serve.name}: over the overlay"
            assert not tcp_open_from(peer, host.address, port), f"{serve.name}: a peer's LAN packets"
            assert not tcp_open_from_here(host.address, port), f"{serve.name}: this machine's LAN packets"


def _admin_upstreams(lab: Any, inv: Inventory) -> dict[str, dict[str, Any]]:
    assert inv.gateway is not None
    out = lab.host(inv.gateway.host).check_output(
        f"sudo sh -c 'curl -sS -m 10 -H \"Authorization: Bearer $(cat {admin_token_path()})\" "
        f"http://127.0.0.1:{inv.gateway.port}/admin/upstreams'"
    )
    return {row["name"]: row for row in json.loads(out)["upstreams"]}


def test_gateway_reports_the_vllm_and_ollama_upstreams_healthy(lab: Any, inv: Inventory,
                                                               vllm_hosts: list[str]) -> None:
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    wanted = upstreams_of(inv, {"vllm", "ollama"})
    awake = {up for up, (host, _) in wanted.items() if not inv.hosts[host].sleep.sleeps}
    deadline = time.monotonic() + 90  # the gateway's prober runs every few seconds
    while True:
        rows = _admin_upstreams(lab, inv)
        states = {up: rows[up]["state"] for up in wanted}
        # a sleeping box may be asleep (the prober never wakes it); everything else must be healthy
        if all(states[up] == "healthy" for up in awake) and all(
                states[up] in ("healthy", "asleep") for up in wanted):
            break
        assert time.monotonic() < deadline, states
        time.sleep(2)
    for up, (_host, serve) in wanted.items():
        assert rows[up]["engine"] == serve.engine and rows[up]["model"] == serve.name


def test_chat_from_another_machine_with_the_openai_client_is_answered_by_vllm(lab: Any, inv: Inventory,
                                                                             vllm_hosts: list[str]) -> None:
    if not lab.local or inv.gateway is None:
        pytest.skip("sends from a local lab machine's namespace through the gateway")
    from hearth.lab import try_gateway
    from hearth.lab.state import lab_root, load_record

    record = load_record(lab_root())
    assert record is not None
    for up, (_host, serve) in upstreams_of(inv, {"vllm"}).items():
        result = try_gateway.ask(record, lab.inventory, serve.name, "hello from the openai client")
        assert result.client_machine != inv.gateway.host
        assert result.status == 200, result
        assert result.upstream == up and result.served_model == serve.name, result
        assert (result.answer or "").startswith(f"[vllm stand-in {serve.name} #"), result.answer
        assert "hello from the openai client" in (result.answer or "")


def test_streamed_chat_through_the_gateway_from_another_machine(lab: Any, inv: Inventory,
                                                                vllm_hosts: list[str]) -> None:
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    from tests.lab.test_gateway import client_key

    gateway_ip = inv.hosts[inv.gateway.host].overlay_ip
    sender = lab.host(next(n for n in inv.linux_hosts() if n != inv.gateway.host and not inv.hosts[n].sleep.sleeps))
    for up, (_host, serve) in upstreams_of(inv, {"vllm"}).items():
        body = {"model": serve.name, "stream": True, "messages": [{"role": "user", "content": "stream it"}]}
        out = sender.check_output(
            f"curl -sS -N -m 60 -D - -H {shlex.quote('Authorization: Bearer ' + client_key(inv))} "
            f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))} "
            f"http://{gateway_ip}:{inv.gateway.port}/v1/chat/completions")
        head, _, events = out.replace("\r\n", "\n").partition("\n\n")
        assert head.split()[1] == "200", out
        assert f"x-hearth-upstream: {up}" in head.lower()
        data = [line[6:] for line in events.splitlines() if line.startswith("data: ")]
        assert data[-1] == "[DONE]" and len(data) > 2, data
        text = "".join(choice.get("delta", {}).get("content") or ""
                       for d in data[:-1] for choice in json.loads(d).get("choices", []))
        assert text.startswith(f"[vllm stand-in {serve.name} #") and "stream it" in text, text


def test_the_second_run_changed_nothing_after_the_role_ran(lab: Any, inv: Inventory, vllm_hosts: list[str]) -> None:
    if lab.result is None:
        pytest.skip("this session deployed nothing (an existing lab)")
    units = [configs.unit_name(s) for n in vllm_hosts for s in configs.vllm_serves(inv, n)]
    for unit in units:  # the first run wrote every unit (and started it: test above)
        assert any(unit in op for op in lab.result.converge.changed), \
            (unit, [op for op in lab.result.converge.changed if "vllm" in op])
    assert lab.result.noop.totals.get("success", 0) == 0, lab.result.noop.changed


def test_hugging_face_token_is_a_0600_file_read_by_the_service_never_shown(lab: Any, inv: Inventory,
                                                                           vllm_hosts: list[str]) -> None:
    """Issue 11 item 1: the token (a secret reference) lands 0600 for the service user only,
    the unit points HF_TOKEN_PATH at it, and it is in no unit, command line, environment or log."""
    with_token = [n for n in vllm_hosts if configs.settings(inv, n)["vllm_hf_token"]]
    if not with_token:
        pytest.skip("no vLLM host has a vllm_hf_token in this inventory")
    for name in with_token:
        node = lab.host(name)
        token = resolve_secret(str(configs.settings(inv, name)["vllm_hf_token"]))
        with node.sudo():
            file = node.file(configs.HF_TOKEN)
            assert (file.mode, file.user, file.group) == (0o600, configs.USER, configs.USER)
            assert file.content_string.strip() == token
        for serve in configs.vllm_serves(inv, name):
            unit = configs.unit_name(serve)
            # the stand-in reads HF_TOKEN_PATH at start as huggingface_hub does: active means readable
            # by the service user inside the unit's sandbox
            assert show(node, unit, "ActiveState")["ActiveState"] == "active"
            pid = main_pid(node, unit)
            environ = node.check_output(f"sudo cat /proc/{pid}/environ | tr '\\0' '\\n'").splitlines()
            assert f"HF_TOKEN_PATH={configs.HF_TOKEN}" in environ
            seen = "\n".join([*environ, *cmdline(node, pid), node.check_output(f"systemctl cat {unit}"),
                              node.check_output(f"sudo journalctl -q -u {unit} -o cat --no-pager")])  # fmt: skip
            assert token not in seen, f"{unit}: the Hugging Face token is visible"
        # the token file is grep's pattern list: the token on grep's command line would be logged
        # by sudo to the journal under /var/log and found there by this very search
        leaked = node.run(f"sudo grep -rlF -f {configs.HF_TOKEN} /tmp /var/tmp /var/log /etc/systemd")
        assert leaked.stdout.strip() == "", leaked.stdout
