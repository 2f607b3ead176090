"""The windows role planned by pyinfra against fake facts: no host is connected to.

pyinfra plans the role (roles/windows) for the example inventory's two Windows
hosts with every fact answered by a model of the box: right after the bootstrap
(the first deploy has work to do), then in the state that first deploy leaves (a
second deploy plans zero commands). The example's addresses are never contacted:
``Host.get_fact`` is replaced, and the hosts are never connected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api.host import Host
from pyinfra.connectors.util import make_unix_command

from hearth import powershell as ps
from hearth.configs import windows as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.inventory.groups import build_groups
from hearth.operations.windows import env, power
from hearth.operations.windows.service import task_stamp
from tests.unit.role_plan import plan_roles
from tests.unit.windows_support import parse_problems

REPO = Path(__file__).resolve().parents[2]
ROLE_FILES = ["roles/windows/keys.py", "roles/windows/main.py"]  # as deploy.py includes them
EXAMPLE = REPO / "inventory" / "example.yml"
INV = load_inventory(EXAMPLE, group_defaults())
NICS = {"windows-gpu": ("Ethernet", "Realtek PCIe GbE Family Controller", "D8-BB-C1-30-60-12"),
        "mouth": ("Ethernet 2", "Intel(R) Ethernet Controller I226-V", "A8-A1-59-50-90-01")}


def peer_key(name: str) -> str:
    return f"KEY-{name}"


def converged(name: str) -> dict[str, Any]:
    """What the box reports after the first deploy: every setting as the inventory says."""
    paths = configs.paths(INV, name)
    # hosts hearth does not manage (the example's phones) give their key in the inventory
    keys = {peer: INV.hosts[peer].wireguard_public_key or peer_key(peer) for peer in INV.hosts if peer != name}
    tunnel = configs.wg_config(INV, name, keys).render()
    env_values = configs.ollama_environment(INV, name)
    adapter, description, mac = NICS[name]
    minutes = configs.idle_minutes(INV, name)
    return {
        "files": {configs.SSHD_CONFIG: hashlib.sha256(configs.sshd_config(INV, name).render().encode()).hexdigest()},
        "first_lines": {r"C:\ProgramData\hearth\wireguard\wg0.pub": peer_key(name),
                        r"C:\ProgramData\hearth\wireguard\wg0.conf": f"# {configs.stamp(tunnel)}"},
        "services": {"sshd": ("Running", "Automatic"), "WireGuardTunnel$wg0": ("Running", "Automatic")},
        "profiles": {"Domain": True, "Private": True, "Public": True},
        "rules": {r.name: {"Name": r.name, "Description": r.stamp(), "Enabled": "True"}
                  for r in configs.firewall_rules(INV, name)},
        "openssh_rule": "False",
        "power": {"STANDBYIDLE": {"ac": minutes * 60, "dc": minutes * 60}, "RTCWAKE": {"ac": 0, "dc": 0}},
        "registry": {power.POWER_KEY: {"HibernateEnabled": "0"}, power.SESSION_POWER_KEY: {"HiberbootEnabled": "0"},
                     env.ENVIRONMENT_KEY: {"Path": r"C:\Windows\system32", **env_values}},
        "adapters": [{"Name": adapter, "InterfaceDescription": description, "MacAddress": mac, "Status": "Up",
                      "PhysicalMediaType": "802.3"}],
        "wol": "Enabled", "armed": [description],
        "task": {"TaskName": paths["windows_ollama_task"], "State": "Running",
                 "Description": task_stamp(paths["windows_ollama_exe"], "serve", "SYSTEM",
                                           configs.OLLAMA_START_DELAY_S)},
        "lmstudio": [s.model for s in INV.hosts[name].serves if s.engine == "lmstudio"],
        "ollama_models": [s.model for s in INV.hosts[name].serves if s.engine == "ollama"],
    }


def bootstrapped(name: str) -> dict[str, Any]:
    """Right after `hearth windows bootstrap`: sshd and its rule, nothing else."""
    box = converged(name)
    box.update(files={}, first_lines={}, rules={k: v for k, v in box["rules"].items() if "ssh" in k},
               services={"sshd": ("Running", "Automatic")}, profiles={"Domain": True, "Private": True, "Public": False},
               power={"STANDBYIDLE": {"ac": 1800, "dc": 900}, "RTCWAKE": {"ac": 1, "dc": 1}},
               registry={power.POWER_KEY: {"HibernateEnabled": "1"}, power.SESSION_POWER_KEY: {"HiberbootEnabled": "1"},
                         env.ENVIRONMENT_KEY: {"Path": r"C:\Windows\system32"}},
               wol="Disabled", armed=[], task={}, ollama_models=[])
    box["files"] = {configs.SSHD_CONFIG: "0" * 64}  # Windows' default sshd_config
    return box


def fact_answer(box: dict[str, Any], host: Host, cls: type, kwargs: dict[str, Any]) -> Any:
    name = cls.__name__
    if name == "WireGuardPublicKey":  # a Linux peer's key
        return peer_key(host.name)
    if name == "FirstLine":
        return box["first_lines"].get(kwargs["path"])
    if name == "TextLines":  # administrators_authorized_keys: the deploy key only (no tunnel in the example)
        return box.get("authorized_keys", ["ssh-ed25519 AAAAdeploy hearth"])
    if name == "FileHash":
        value = box["files"].get(kwargs["path"])
        return value.upper() if value else None
    if name == "Service":
        status = box["services"].get(kwargs["service"])
        return {"Name": kwargs["service"], "Status": status[0], "StartType": status[1]} if status else {}
    if name == "FirewallProfiles":
        return box["profiles"]
    if name == "FirewallRules":
        if kwargs.get("group"):
            return box["rules"]
        return {n: {"Name": n, "Enabled": box["openssh_rule"]} for n in kwargs["names"]}
    if name == "PowerSetting":
        return box["power"][kwargs["setting"]]
    if name == "RegistryValues":
        return box["registry"].get(kwargs["path"], {})
    if name == "NetAdapters":
        return box["adapters"]
    if name == "AdapterPowerManagement":
        return {"Name": kwargs["adapter"], "WakeOnMagicPacket": box["wol"]}
    if name == "WakeArmedDevices":
        return box["armed"]
    if name == "ScheduledTask":
        return box["task"]
    if name == "HttpModels":
        return box["lmstudio"]
    if name == "OllamaModelsWindows":
        return box["ollama_models"]
    raise AssertionError(f"unexpected fact {name} {kwargs}")


Plan = dict[str, list[tuple[str, int]]]


def plan(monkeypatch: pytest.MonkeyPatch, state_of: Callable[[str], dict[str, Any]]) -> Plan:
    """Plan roles/windows for the Windows hosts: {host: [(step name, command count)]}."""
    boxes = {name: state_of(name) for name in INV.windows_hosts()}
    return plan_roles(monkeypatch, INV, EXAMPLE, ROLE_FILES, INV.windows_hosts(),
                      lambda host, cls, kwargs: fact_answer(boxes.get(host.name, {}), host, cls, kwargs),
                      with_windows=True, sent=SENT)


SENT: list[str] = []  # every command line a planned step would send (for the grammar check)


def commands(steps: list[tuple[str, int]]) -> int:
    return sum(count for _, count in steps)


def test_first_deploy_after_bootstrap_has_work_on_every_concern(monkeypatch: pytest.MonkeyPatch) -> None:
    planned = plan(monkeypatch, bootstrapped)
    gpu = dict(planned["windows-gpu"])
    for step in ("WireGuard key pair for wg0 (made on the box)", "Windows Firewall on in every profile",
                 "Sleep after 15 idle minutes", "Hibernate off", "Wake timers: disable",
                 "Wake-on-LAN on the wired NIC (d8:bb:c1:30:60:12)", "wg0 tunnel service with every peer's public key",
                 "Ollama serves from boot (scheduled task, before any logon)", "Ollama is running",
                 "Model qwen2.5-coder:14b pulled"):
        assert gpu[step] > 0, step
    env_step = next(s for s in gpu if s.startswith("Ollama environment: "))
    assert "OLLAMA_KEEP_ALIVE=0" in env_step and "OLLAMA_HOST=10.77.0.30:11434" in env_step and gpu[env_step] == 1
    assert gpu["Restart Ollama (environment or task changed)"] == 1
    mouth = dict(planned["mouth"])
    assert mouth["Never sleep on idle"] > 0  # the chat box does not sleep
    assert not any(s.startswith("Ollama") for s in mouth)  # LM Studio box: no Ollama steps
    assert "LM Studio answers at http://10.77.0.50:1234/v1/models with gemma-4-31b" in mouth


def test_every_command_of_a_first_deploy_is_powershell_that_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    SENT.clear()
    plan(monkeypatch, bootstrapped)
    assert len(SENT) >= 20
    for line in SENT:
        assert line.startswith(ps.POWERSHELL)  # no sh -c, no sudo: the line sshd hands to PowerShell
        assert parse_problems(line) == [], line  # the line itself, as PowerShell reads it
        script = ps.decode(line)
        assert parse_problems(script) == [], script


def test_second_deploy_plans_zero_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    planned = plan(monkeypatch, converged)
    for host, steps in planned.items():
        assert steps, host
        assert commands(steps) == 0, (host, [s for s in steps if s[1]])


def test_a_driver_update_that_dropped_wake_is_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def after_driver_update(name: str) -> dict[str, Any]:
        box = converged(name)
        box["armed"] = []  # "Allow this device to wake the computer" unticked (seed 000)
        return box

    changed = [(s, n) for s, n in plan(monkeypatch, after_driver_update)["windows-gpu"] if n]
    assert changed == [("Wake-on-LAN on the wired NIC (d8:bb:c1:30:60:12)", 1)]


def test_a_changed_ollama_setting_restarts_ollama_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def stale_env(name: str) -> dict[str, Any]:
        box = converged(name)
        box["registry"][env.ENVIRONMENT_KEY]["OLLAMA_KEEP_ALIVE"] = "5m"
        return box

    changed = [s for s, n in plan(monkeypatch, stale_env)["windows-gpu"] if n]
    assert [s for s in changed if not s.startswith("Ollama environment")] == [
        "Restart Ollama (environment or task changed)"]


def test_windows_commands_reach_sshd_without_sh_c() -> None:
    data = dict(build_groups(INV, EXAMPLE)["windows"])["windows-gpu"]
    line = ps.command("Get-Service -Name 'sshd'")
    from pyinfra.api import StringCommand

    sent = make_unix_command(StringCommand(line), _shell_executable=data["_shell_executable"]).get_raw_value()
    assert sent == line  # exactly the powershell.exe line: no `sh -c '...'`, no sudo
    linux = make_unix_command(StringCommand("true"), _sudo=True).get_raw_value()
    assert linux.startswith("sudo -H -n sh -c")  # the Linux default, for contrast


def test_ssh_and_model_ports_are_scoped() -> None:
    rules = {r.name: r for r in configs.firewall_rules(INV, "windows-gpu")}
    assert rules["hearth-ssh-22"].remote == ("192.168.1.0/24", "10.77.0.0/24")
    assert rules["hearth-ollama-11434"].remote == ("10.77.0.0/24",)  # nothing from the LAN
    assert rules["hearth-wireguard-51820"].remote == ("192.168.1.0/24",)
    mouth = {r.name: r for r in configs.firewall_rules(INV, "mouth")}
    assert mouth["hearth-lmstudio-1234"].remote == ("10.77.0.0/24",)
