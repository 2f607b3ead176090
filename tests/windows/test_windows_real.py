"""A deployed Windows GPU box, checked over SSH + PowerShell against its inventory.

Every expectation comes from the inventory (hearth.configs.windows); every reading
uses the same fact hearth's operations read (hearth.facts.windows), run on the box.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

import pytest

from hearth import powershell as ps
from hearth.configs import windows as configs
from hearth.facts import windows as facts
from hearth.inventory import Inventory
from hearth.operations.windows import env, power
from hearth.operations.windows.wol import find_adapter, is_wifi


def read(box: Any, fact: type, **kwargs: Any) -> Any:
    """Run a hearth fact's PowerShell on the box and parse its output as the deploy does."""
    result = box.run(fact().command(**kwargs))
    assert result.rc == 0, result.stderr
    return fact().process(result.stdout.splitlines())


def run(box: Any, *lines: str) -> list[str]:
    result = box.run(ps.command(*lines))
    assert result.rc == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def test_sshd_runs_with_keys_only(box: Any, inventory: Inventory, windows_host: str) -> None:
    service = read(box, facts.Service, service="sshd")
    assert (service["Status"], service["StartType"]) == ("Running", "Automatic")
    wanted = configs.sshd_config(inventory, windows_host).render()
    assert read(box, facts.FileHash, path=configs.SSHD_CONFIG) == hashlib.sha256(wanted.encode()).hexdigest().upper()
    shell = read(box, facts.RegistryValues, path=r"HKLM:\SOFTWARE\OpenSSH").get("DefaultShell")
    assert shell and shell.lower().endswith("powershell.exe")
    acl = run(box, f"(Get-Acl -LiteralPath {ps.quote(configs.ADMIN_KEYS)}).Access | "
                   "ForEach-Object { $_.IdentityReference.Translate([Security.Principal.SecurityIdentifier]).Value }")
    assert set(acl) <= {"S-1-5-18", "S-1-5-32-544"}  # SYSTEM and Administrators only


def test_wake_on_lan_flags(box: Any, inventory: Inventory, windows_host: str) -> None:
    nic = configs.wake_nic(inventory, windows_host)
    if nic is None:
        pytest.skip(f"{windows_host} names no NIC for Wake-on-LAN")
    adapter = find_adapter(read(box, facts.NetAdapters), nic.mac, nic.name)
    assert not is_wifi(adapter)
    assert read(box, facts.AdapterPowerManagement, adapter=adapter["Name"])["WakeOnMagicPacket"] == "Enabled"
    assert adapter["InterfaceDescription"] in read(box, facts.WakeArmedDevices)
    assert read(box, facts.RegistryValues, path=power.SESSION_POWER_KEY).get("HiberbootEnabled") == "0"


def test_power_plan(box: Any, inventory: Inventory, windows_host: str) -> None:
    spec = configs.spec(inventory.hosts[windows_host])
    minutes = configs.idle_minutes(inventory, windows_host)
    assert read(box, facts.PowerSetting, subgroup="SUB_SLEEP", setting="STANDBYIDLE")["ac"] == minutes * 60
    assert read(box, facts.PowerSetting, subgroup="SUB_SLEEP", setting="RTCWAKE")["ac"] == \
        power.WAKE_TIMERS[spec.wake_timers]
    hibernate = read(box, facts.RegistryValues, path=power.POWER_KEY).get("HibernateEnabled")
    assert hibernate == ("1" if spec.hibernate else "0")


def test_ollama_environment(box: Any, inventory: Inventory, windows_host: str) -> None:
    wanted = configs.ollama_environment(inventory, windows_host)
    if not wanted:
        pytest.skip(f"{windows_host} serves no Ollama model")
    machine = read(box, facts.RegistryValues, path=env.ENVIRONMENT_KEY)
    assert {key: machine.get(key) for key in wanted} == wanted
    task = read(box, facts.ScheduledTask, task=configs.paths(inventory, windows_host)["windows_ollama_task"])
    assert task.get("State") == "Running"


def test_firewall_scope(box: Any, inventory: Inventory, windows_host: str) -> None:
    assert all(read(box, facts.FirewallProfiles).values())
    present = read(box, facts.FirewallRules, group="hearth")
    for rule in configs.firewall_rules(inventory, windows_host):
        assert present[rule.name]["Description"] == rule.stamp() and present[rule.name]["Enabled"] == "True"
        remote = run(box, f"(Get-NetFirewallRule -Name {ps.quote(rule.name)} | Get-NetFirewallAddressFilter)"
                          ".RemoteAddress")
        # Windows prints a CIDR as address/mask: compare the networks
        assert {ipaddress.ip_network(r, strict=False) for r in remote} == \
            {ipaddress.ip_network(r) for r in rule.remote}
    other = read(box, facts.FirewallRules, names=(configs.OPENSSH_ANY_RULE,))
    assert all(r.get("Enabled") == "False" for r in other.values())


def test_lmstudio_answers(box: Any, inventory: Inventory, windows_host: str) -> None:
    url = configs.lmstudio_url(inventory, windows_host)
    if url is None:
        pytest.skip(f"{windows_host} serves no LM Studio model")
    models = [s.model for s in inventory.hosts[windows_host].serves if s.engine == "lmstudio"]
    listed = read(box, facts.HttpModels, url=url)
    assert listed is not None and set(models) <= set(listed)


def test_tunnel_key_line(box: Any, inventory: Inventory, windows_host: str) -> None:
    """reach ssh_tunnel: exactly one gateway tunnel key, good for the serve ports only; none otherwise."""
    from hearth.configs import tunnel
    from hearth.operations.windows.ssh_keys import _comment

    lines = read(box, facts.TextLines, path=configs.ADMIN_KEYS) or []
    tunnel_lines = [line for line in lines if _comment(line).startswith(tunnel.MARKER)]
    if windows_host not in tunnel.tunnel_hosts(inventory):
        assert tunnel_lines == []
        return
    (line,) = tunnel_lines
    options = line.split()[0]
    wanted = [f'permitopen="127.0.0.1:{remote}"' for _, remote in tunnel.forwards(inventory, windows_host)]
    assert options == ",".join(["restrict", "port-forwarding", *wanted, 'command="exit 1"']), line
