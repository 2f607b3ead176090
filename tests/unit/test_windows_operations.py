"""hearth's Windows operations: arguments in, PowerShell out (pyinfra's fixture style).

Each fixture under windows_fixtures/<module>.<operation>/ gives the operation's
arguments, the facts the host reports, the scripts it must send, and the facts the
host reports after that first run; fed those, the operation must send nothing
(a second deploy changes nothing). Every script must parse under a PowerShell
grammar (tree-sitter-powershell): no ERROR, no MISSING node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import OperationError

from hearth import powershell as ps
from hearth.operations.windows import (
    env,
    files,
    firewall,
    lmstudio,
    ollama,
    power,
    service,
    ssh_keys,
    wireguard,
    wol,
)
from tests.unit.windows_support import parse_problems, scripts

FIXTURES = Path(__file__).with_name("windows_fixtures")
MODULES = {"wol": wol, "power": power, "env": env, "service": service, "firewall": firewall,
           "files": files, "wireguard": wireguard, "ollama": ollama, "ssh_keys": ssh_keys}
CASES = sorted(FIXTURES.glob("*/*.json"))


def load(path: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    fixture = json.loads(path.read_text())
    module, name = fixture["operation"].split(".")
    args = dict(fixture["args"])
    if fixture["operation"] == "firewall.inbound_rules":
        args["rules"] = [firewall.Rule(r["name"], r["display"], r["protocol"], r["port"], tuple(r["remote"]))
                         for r in args["rules"]]
    return getattr(MODULES[module], name), args, fixture


def test_every_operation_has_a_fixture() -> None:
    covered = {path.parent.name for path in CASES}
    for module_name, module in MODULES.items():
        for name in dir(module):
            obj = getattr(module, name)
            if callable(obj) and hasattr(obj, "_inner") and obj.__module__ == module.__name__:
                if name in ("task_restarted", "service_restarted", "windows_tunnel", "tunnel_key"):
                    continue  # always-change restarts (tested below); windows_tunnel wraps tunnel,
                    # tunnel_key wraps key_line (tests/unit/test_tunnel.py)
                assert f"{module_name}.{name}" in covered, f"no fixture for {module_name}.{name}"


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_commands_out(path: Path) -> None:
    op, args, fixture = load(path)
    assert scripts(op, fixture["facts"], **args) == fixture["commands"]


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_second_run_sends_nothing(path: Path) -> None:
    op, args, fixture = load(path)
    assert fixture["commands"], "a fixture shows a change on the first run"
    assert scripts(op, fixture["second_run_facts"], **args) == []


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_command_parses_as_powershell(path: Path) -> None:
    fixture = json.loads(path.read_text())
    for script in fixture["commands"]:
        assert parse_problems(ps.script(script)) == [], script


def test_the_grammar_check_catches_a_broken_script() -> None:
    assert parse_problems("if ($LASTEXITCODE -ne 0 { exit 1 }")
    assert parse_problems("$x = @('a', 'b'")


def test_restarts_are_explicit_and_parse() -> None:
    (restart,) = scripts(service.task_restarted, {}, task="hearth-ollama", process="ollama")
    assert restart.splitlines() == [
        "Stop-ScheduledTask -TaskPath '\\' -TaskName 'hearth-ollama'",
        "Get-Process -Name 'ollama' -ErrorAction SilentlyContinue | Stop-Process -Force",
        "Start-ScheduledTask -TaskPath '\\' -TaskName 'hearth-ollama'",
    ]
    (sshd,) = scripts(service.service_restarted, {}, service="sshd")
    assert sshd == "Restart-Service -Name 'sshd' -Force\n"
    assert parse_problems(ps.script(restart)) == [] and parse_problems(ps.script(sshd)) == []


WIFI_ONLY = [{"Name": "Wi-Fi", "InterfaceDescription": "Intel(R) Wi-Fi 6 AX201 160MHz",
              "MacAddress": "A0-AF-BD-11-22-33", "Status": "Up", "PhysicalMediaType": "Native 802.11"}]


def test_a_wifi_nic_is_refused_for_wake_on_lan() -> None:
    with pytest.raises(OperationError, match="Wi-Fi adapter"):
        scripts(wol.nic_wakes, {"NetAdapters": WIFI_ONLY}, mac="a0:af:bd:11:22:33")


def test_a_missing_nic_names_the_adapters_present() -> None:
    with pytest.raises(OperationError, match=r"no physical network adapter with MAC d8:bb.*Wi-Fi \(A0-AF"):
        scripts(wol.nic_wakes, {"NetAdapters": WIFI_ONLY}, mac="d8:bb:c1:30:60:12")


def test_a_nic_that_cannot_wake_is_an_error() -> None:
    wired = [{**WIFI_ONLY[0], "Name": "Ethernet", "PhysicalMediaType": "802.3"}]
    with pytest.raises(OperationError, match="does not support wake on magic packet"):
        scripts(wol.nic_wakes, {"NetAdapters": wired, "AdapterPowerManagement": {"WakeOnMagicPacket": "Unsupported"}},
                adapter="Ethernet")


def test_an_absent_service_is_an_error_not_an_install() -> None:
    with pytest.raises(OperationError, match="service WireGuardTunnel\\$wg0 does not exist"):
        scripts(service.service_running, {"Service": {}}, executing=True, service="WireGuardTunnel$wg0")
    # While planning, an earlier step (the tunnel) may still be about to create it: a change, no error
    planned = scripts(service.service_running, {"Service": {}}, service="WireGuardTunnel$wg0")
    assert planned == ["Set-Service -Name 'WireGuardTunnel$wg0' -StartupType Automatic\n",
                       "Start-Service -Name 'WireGuardTunnel$wg0'\n"]


def test_values_are_quoted_so_nothing_in_them_runs() -> None:
    hostile = "a'; Remove-Item C:\\ -Recurse; '"
    (script,) = scripts(env.machine_env, {"RegistryValues": {}}, values={"OLLAMA_X": hostile})
    assert script == ("[Environment]::SetEnvironmentVariable('OLLAMA_X', 'a''; Remove-Item C:\\ -Recurse; ''', "
                      "'Machine')\n")
    assert parse_problems(ps.script(script)) == []


def test_the_private_key_is_never_printed_or_sent() -> None:
    (keys,) = scripts(wireguard.keypair, {"FirstLine": None}, interface="wg0")
    assert "Write-Output" not in keys and "Write-Host" not in keys
    assert "$private = & 'C:\\Program Files\\WireGuard\\wg.exe' genkey" in keys
    # The key folder: SYSTEM and Administrators only, nothing inherited.
    assert '/inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F"' in keys
    config = "[Interface]\nAddress = 10.77.0.30/24\n"
    (tunnel,) = scripts(wireguard.tunnel, {"FirstLine": None}, interface="wg0", config=config, stamp="hearth x")
    assert "PrivateKey = $key" in tunnel and "PrivateKey" not in config


def test_lmstudio_check_changes_nothing_and_fails_loudly() -> None:
    assert scripts(lmstudio.serves, {"HttpModels": ["gemma-4-31b"]}, url="http://10.77.0.50:1234",
                   models=["gemma-4-31b"]) == []
    with pytest.raises(OperationError, match=r"does not answer at http://10\.77\.0\.50:1234/v1/models"):
        scripts(lmstudio.serves, {"HttpModels": None}, url="http://10.77.0.50:1234", models=["gemma-4-31b"])
    with pytest.raises(OperationError, match="does not list gemma-4-31b"):
        scripts(lmstudio.serves, {"HttpModels": ["qwen3-8b"]}, url="http://10.77.0.50:1234", models=["gemma-4-31b"])


def test_commands_are_sent_encoded_and_survive_any_shell() -> None:
    line = ps.command("Write-Output 'a \"b\" $c'")
    assert line.startswith("powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ")
    # Only base64 characters after the flags: nothing for cmd.exe or PowerShell to re-quote.
    assert all(c.isalnum() or c in "+/=" for c in line.rsplit(" ", 1)[1])
    assert ps.decode(line) == ps.script("Write-Output 'a \"b\" $c'")
