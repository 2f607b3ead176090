"""Facts about a Windows host, read with PowerShell over SSH.

Each fact runs one cmdlet (or powercfg) and prints its output in a fixed shape
(``Format-List`` of the properties hearth reads, widened so no value wraps), which
:func:`hearth.powershell.list_records` parses. The unit tests feed every fact the
output shape shown on the cmdlet's Microsoft documentation page.

The host needs ``_shell_executable: None`` in its data (hearth.inventory.groups
sets it for ``os: windows``) so pyinfra sends the command without ``sh -c``.
"""

from __future__ import annotations

import re
from typing import Any

from pyinfra.api import FactBase

from hearth import powershell as ps

WIDE = "Out-String -Width 4096"
# What Get-ItemProperty adds to a registry key's values.
PS_PROPERTIES = frozenset({"PSPath", "PSParentPath", "PSChildName", "PSDrive", "PSProvider"})


def _list(command: str, properties: tuple[str, ...]) -> str:
    return f"{command} | Format-List -Property {ps.array(properties)} | {WIDE}"


class NetAdapters(FactBase[list[dict[str, str]]]):
    """
    The physical network adapters: ``Name``, ``InterfaceDescription``, ``MacAddress``
    (``D8-BB-C1-30-60-12``), ``Status``, ``PhysicalMediaType`` (``802.3`` wired,
    ``Native 802.11`` Wi-Fi).

    .. code:: python

        host.get_fact(NetAdapters)  # [{"Name": "Ethernet", "MacAddress": "D8-BB-...", ...}]
    """

    default = list
    PROPERTIES = ("Name", "InterfaceDescription", "MacAddress", "Status", "PhysicalMediaType")

    def command(self) -> str:
        return ps.command(_list("Get-NetAdapter -Physical", self.PROPERTIES))

    def process(self, output: list[str]) -> list[dict[str, str]]:
        return [r for r in ps.list_records(output) if "Name" in r]


class AdapterPowerManagement(FactBase[dict[str, str]]):
    """
    Power management of one network adapter (``Get-NetAdapterPowerManagement``):
    ``WakeOnMagicPacket`` is ``Enabled``, ``Disabled`` or ``Unsupported``.

    .. code:: python

        host.get_fact(AdapterPowerManagement, adapter="Ethernet")  # {"WakeOnMagicPacket": "Enabled", ...}
    """

    default = dict
    PROPERTIES = ("Name", "InterfaceDescription", "WakeOnMagicPacket", "AllowComputerToTurnOffDevice")

    def command(self, adapter: str) -> str:
        return ps.command(_list(f"Get-NetAdapterPowerManagement -Name {ps.quote(adapter)}", self.PROPERTIES))

    def process(self, output: list[str]) -> dict[str, str]:
        records = ps.list_records(output)
        return records[0] if records else {}


class WakeArmedDevices(FactBase[list[str]]):
    """
    Devices allowed to wake the computer ("Allow this device to wake the computer"),
    by name, from ``powercfg /devicequery wake_armed``; empty when none is.

    .. code:: python

        host.get_fact(WakeArmedDevices)  # ["HID Keyboard Device", "Intel(R) Ethernet Connection I219-V"]
    """

    default = list

    def command(self) -> str:
        return ps.command(ps.native("powercfg.exe /devicequery wake_armed"))

    def process(self, output: list[str]) -> list[str]:
        names = [line.strip() for line in output if line.strip()]
        return [] if names == ["NONE"] else names


_INDEX = re.compile(r"Current (AC|DC) Power Setting Index:\s*0x([0-9a-fA-F]+)")


class PowerSetting(FactBase[dict[str, int]]):
    """
    One setting of the active power plan (``powercfg /query SCHEME_CURRENT <sub> <setting>``):
    ``{"ac": int, "dc": int}``; empty when the setting does not exist.

    .. code:: python

        host.get_fact(PowerSetting, subgroup="SUB_SLEEP", setting="STANDBYIDLE")  # {"ac": 900, "dc": 900}
    """

    default = dict

    def command(self, subgroup: str, setting: str) -> str:
        return ps.command(f"powercfg.exe /query SCHEME_CURRENT {subgroup} {setting}")

    def process(self, output: list[str]) -> dict[str, int]:
        values: dict[str, int] = {}
        for line in output:
            match = _INDEX.search(line)
            if match:
                values[match.group(1).lower()] = int(match.group(2), 16)
        return values


class RegistryValues(FactBase[dict[str, str]]):
    """
    The values under a registry key (``Get-ItemProperty``), as text; empty when the
    key does not exist. The ``PSPath``... properties PowerShell adds are dropped.

    .. code:: python

        host.get_fact(RegistryValues, path=r"HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Power")
    """

    default = dict

    def command(self, path: str) -> str:
        return ps.command(
            f"$key = Get-ItemProperty -LiteralPath {ps.quote(path)} -ErrorAction SilentlyContinue",
            f"if ($key) {{ $key | Format-List -Property '*' | {WIDE} }}",
        )

    def process(self, output: list[str]) -> dict[str, str]:
        records = ps.list_records(output)
        values = records[0] if records else {}
        return {k: v for k, v in values.items() if k not in PS_PROPERTIES}


class Service(FactBase[dict[str, str]]):
    """
    A Windows service (``Get-Service``): ``Name``, ``Status`` (``Running``,
    ``Stopped``...), ``StartType`` (``Automatic``, ``Manual``, ``Disabled``); empty
    when there is no such service.

    .. code:: python

        host.get_fact(Service, service="sshd")  # {"Name": "sshd", "Status": "Running", "StartType": "Automatic"}
    """

    default = dict

    def command(self, service: str) -> str:
        return ps.command(
            f"$svc = Get-Service -Name {ps.quote(service)} -ErrorAction SilentlyContinue",
            f"if ($svc) {{ {_list('$svc', ('Name', 'DisplayName', 'Status', 'StartType'))} }}",
        )

    def process(self, output: list[str]) -> dict[str, str]:
        records = ps.list_records(output)
        return records[0] if records else {}


class ScheduledTask(FactBase[dict[str, str]]):
    """
    A scheduled task in the root folder (``Get-ScheduledTask``): ``TaskName``,
    ``State`` (``Ready``, ``Running``, ``Disabled``), ``Description`` (hearth keeps
    a stamp of the task's definition there); empty when there is no such task.

    .. code:: python

        host.get_fact(ScheduledTask, task="hearth-ollama")  # {"State": "Running", "Description": "hearth 0a1b"}
    """

    default = dict

    def command(self, task: str) -> str:
        return ps.command(
            f"$task = Get-ScheduledTask -TaskPath '\\' -TaskName {ps.quote(task)} -ErrorAction SilentlyContinue",
            f"if ($task) {{ {_list('$task', ('TaskPath', 'TaskName', 'State', 'Description'))} }}",
        )

    def process(self, output: list[str]) -> dict[str, str]:
        records = ps.list_records(output)
        return records[0] if records else {}


class FirewallRules(FactBase[dict[str, dict[str, str]]]):
    """
    Windows Firewall rules by name (``Get-NetFirewallRule``), either every rule of a
    ``group`` or the rules named in ``names``: ``DisplayName``, ``Description``,
    ``Enabled`` (``True``/``False``), ``Direction``, ``Action``.

    .. code:: python

        host.get_fact(FirewallRules, group="hearth")  # {"hearth-ollama-11434": {"Enabled": "True", ...}}
    """

    default = dict
    PROPERTIES = ("Name", "DisplayName", "Description", "Enabled", "Direction", "Action")

    def command(self, group: str | None = None, names: tuple[str, ...] = ()) -> str:
        selector = f"-Group {ps.quote(group)}" if group else f"-Name {ps.array(names)}"
        return ps.command(
            f"$rules = Get-NetFirewallRule {selector} -ErrorAction SilentlyContinue",
            f"if ($rules) {{ {_list('$rules', self.PROPERTIES)} }}",
        )

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        return {r["Name"]: r for r in ps.list_records(output) if "Name" in r}


class FirewallProfiles(FactBase[dict[str, bool]]):
    """
    Whether each Windows Firewall profile is on (``Get-NetFirewallProfile``).

    .. code:: python

        host.get_fact(FirewallProfiles)  # {"Domain": True, "Private": True, "Public": True}
    """

    default = dict

    def command(self) -> str:
        return ps.command(_list("Get-NetFirewallProfile", ("Name", "Enabled")))

    def process(self, output: list[str]) -> dict[str, bool]:
        return {r["Name"]: r.get("Enabled") == "True" for r in ps.list_records(output) if "Name" in r}


class FileHash(FactBase[str | None]):
    """
    The SHA256 of a file (``Get-FileHash``), upper-case hex, or ``None`` when the
    file does not exist.

    .. code:: python

        host.get_fact(FileHash, path=r"C:\\ProgramData\\ssh\\sshd_config")  # "8E1F..."
    """

    def command(self, path: str) -> str:
        return ps.command(
            f"if (Test-Path -LiteralPath {ps.quote(path)} -PathType Leaf) {{",
            "  " + _list(f"Get-FileHash -LiteralPath {ps.quote(path)} -Algorithm SHA256",
                         ("Algorithm", "Hash", "Path")),
            "}",
        )

    def process(self, output: list[str]) -> str | None:
        records = ps.list_records(output)
        return records[0].get("Hash", "").upper() or None if records else None


class FirstLine(FactBase[str | None]):
    """
    The first line of a text file (``Get-Content -TotalCount 1``), or ``None`` when
    the file does not exist. Used for a WireGuard public key and for the stamp line
    of a file that holds a secret further down (the secret is never read).

    .. code:: python

        host.get_fact(FirstLine, path=r"C:\\ProgramData\\hearth\\wireguard\\wg0.pub")  # "xTIB...="
    """

    def command(self, path: str) -> str:
        return ps.command(
            f"if (Test-Path -LiteralPath {ps.quote(path)} -PathType Leaf) {{",
            f"  Get-Content -LiteralPath {ps.quote(path)} -TotalCount 1",
            "}",
        )

    def process(self, output: list[str]) -> str | None:
        lines = [line.strip() for line in output if line.strip()]
        return lines[0] if lines else None


class TextLines(FactBase[list[str] | None]):
    """
    The non-blank lines of a text file (``Get-Content``, UTF-8), or ``None`` when the
    file does not exist. Used for an authorized_keys file (public keys only).

    .. code:: python

        host.get_fact(TextLines, path=r"C:\\ProgramData\\ssh\\administrators_authorized_keys")
        # ["ssh-ed25519 AAAA... hearth"]
    """

    MARKER = "hearth-file-exists"

    def command(self, path: str) -> str:
        return ps.command(
            f"if (Test-Path -LiteralPath {ps.quote(path)} -PathType Leaf) {{",
            f"  {ps.quote(self.MARKER)}",
            f"  Get-Content -LiteralPath {ps.quote(path)} -Encoding UTF8",
            "}",
        )

    def process(self, output: list[str]) -> list[str] | None:
        lines = [line.strip("\r\n").strip() for line in output]
        if not lines or lines[0] != self.MARKER:
            return None
        return [line for line in lines[1:] if line]


class HttpModels(FactBase[list[str] | None]):
    """
    The model ids an OpenAI-compatible server lists at ``<url>/v1/models``, asked on
    the host itself; ``None`` when nothing answers there.

    .. code:: python

        host.get_fact(HttpModels, url="http://127.0.0.1:1234")  # ["gemma-4-31b"]
    """

    def command(self, url: str) -> str:
        return ps.command(
            "try {",
            f"  $r = Invoke-RestMethod -Uri {ps.quote(url.rstrip('/') + '/v1/models')} -TimeoutSec 5",
            "  $r.data | ForEach-Object { 'id : ' + $_.id }",
            "  'answered : yes'",
            "} catch { 'answered : no' }",
        )

    def process(self, output: list[str]) -> Any:
        ids = [line.split(" : ", 1)[1].strip() for line in output if line.startswith("id : ")]
        answered = any(line.strip() == "answered : yes" for line in output)
        return ids if answered else None


class OllamaModelsWindows(FactBase[list[str]]):
    """
    Models the Ollama server at ``address`` has pulled (``ollama.exe list``), as
    ``name:tag``; empty when Ollama is not installed there or its server does not answer.

    .. code:: python

        host.get_fact(OllamaModelsWindows, exe=r"C:\\Program Files\\Ollama\\ollama.exe",
                      address="10.77.0.30:11434")  # ["qwen2.5-coder:14b"]
    """

    default = list

    def command(self, exe: str, address: str) -> str:
        return ps.command(
            f"if (Test-Path -LiteralPath {ps.quote(exe)} -PathType Leaf) {{",
            f"  $env:OLLAMA_HOST = {ps.quote(address)}",
            "  $ErrorActionPreference = 'Continue'",
            f"  & {ps.quote(exe)} list 2>$null",
            "}",
            "exit 0",
        )

    def process(self, output: list[str]) -> list[str]:
        from hearth.facts.ollama import model_tag

        rows = [line.split() for line in output if line.strip()]
        return [model_tag(row[0]) for row in rows if row and row[0] != "NAME"]
