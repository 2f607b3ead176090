# ruff: noqa: E501  (documentation samples are kept verbatim, long lines included)
"""hearth's Windows facts parse output shaped like the cmdlets' real output.

Each sample below is laid out the way the fact's command prints it and carries the
Microsoft documentation page it was taken from. Where the cmdlet's reference page
shows sample output, the sample is that output (values as printed there). Where the
reference page shows none (the NetAdapter and NetSecurity cmdlets print no output
in their docs), the sample uses the property names and values the cmdlet's or the
CIM class's page documents, in PowerShell's Format-List layout (``Name : Value``,
records split by a blank line) as shown on the Get-FileHash and Get-Service pages.
"""

from __future__ import annotations

from hearth import powershell as ps
from hearth.facts import windows as facts
from tests.unit.windows_support import parse_problems


def lines(text: str) -> list[str]:
    # Windows ends lines with CRLF; the facts must not care.
    return [line + "\r" for line in text.strip("\n").split("\n")]


# https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/get-filehash
# (Example 1: "Get-FileHash $PSHOME\\powershell.exe | Format-List", the output as printed there)
GET_FILEHASH = """
Algorithm : SHA256
Hash      : 908B64B1971A979C7E3E8CE4621945CBA84854CB98D76367B791A6E22B5F6D53
Path      : C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe
"""


def test_file_hash() -> None:
    assert facts.FileHash().process(lines(GET_FILEHASH)) == \
        "908B64B1971A979C7E3E8CE4621945CBA84854CB98D76367B791A6E22B5F6D53"
    assert facts.FileHash().process([]) is None  # no such file: the command prints nothing


# https://learn.microsoft.com/powershell/module/microsoft.powershell.management/get-itemproperty
# (Example: the value names and data of a registry key, "Get-ItemProperty -Path HKLM:\\SOFTWARE\\...")
GET_ITEMPROPERTY = """
ApplicationBase         : C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\
ConsoleHostAssemblyName : Microsoft.PowerShell.ConsoleHost, Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35, ProcessorArchitecture=msil
PowerShellVersion       : 2.0
RuntimeVersion          : v2.0.50727
CTPVersion              : 5
PSCompatibleVersion     : 1.0,2.0
"""

# The same layout for the key the power operations read (HKLM:\\SYSTEM\\CurrentControlSet\\
# Control\\Power); value names from https://learn.microsoft.com/troubleshoot/windows-client/
# setup-upgrade-and-drivers/disable-and-re-enable-hibernation (HibernateEnabled), plus the PS*
# properties Get-ItemProperty always adds (PSPath, PSParentPath, PSChildName, PSDrive, PSProvider).
GET_ITEMPROPERTY_POWER = """
HibernateEnabled           : 0
HibernateEnabledDefault    : 1
HiberFileSizePercent       : 40
PSPath                     : Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Power
PSParentPath               : Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control
PSChildName                : Power
PSDrive                    : HKLM
PSProvider                 : Microsoft.PowerShell.Core\\Registry
"""


def test_registry_values() -> None:
    values = facts.RegistryValues().process(lines(GET_ITEMPROPERTY))
    assert values["PowerShellVersion"] == "2.0"
    assert values["ConsoleHostAssemblyName"].endswith("ProcessorArchitecture=msil")
    assert values["PSCompatibleVersion"] == "1.0,2.0"  # a registry value, though its name starts with PS
    power = facts.RegistryValues().process(lines(GET_ITEMPROPERTY_POWER))
    assert power["HibernateEnabled"] == "0"
    assert not {"PSPath", "PSParentPath", "PSChildName", "PSDrive", "PSProvider"} & set(power)
    assert facts.RegistryValues().process([]) == {}


# https://learn.microsoft.com/powershell/module/microsoft.powershell.management/get-service
# (Example 7: Get-Service ... | Format-List -Property Name, ...: the list layout) with the
# Name/StartType/Status values of https://learn.microsoft.com/powershell/module/
# microsoft.powershell.management/set-service (Example 2: "BITS  Automatic  Running").
GET_SERVICE = """
Name        : BITS
DisplayName : Background Intelligent Transfer Service
Status      : Running
StartType   : Automatic
"""


def test_service() -> None:
    assert facts.Service().process(lines(GET_SERVICE)) == {
        "Name": "BITS", "DisplayName": "Background Intelligent Transfer Service",
        "Status": "Running", "StartType": "Automatic"}
    assert facts.Service().process([]) == {}


# https://learn.microsoft.com/powershell/module/scheduledtasks/get-scheduledtask
# (Example 1: TaskPath "\\", TaskName "SystemScan", State "Ready"), in Format-List layout
# with the Description hearth stamps.
GET_SCHEDULEDTASK = """
TaskPath    : \\
TaskName    : SystemScan
State       : Ready
Description : hearth 2c0b120acd528ce3
"""


def test_scheduled_task() -> None:
    task = facts.ScheduledTask().process(lines(GET_SCHEDULEDTASK))
    assert (task["TaskPath"], task["TaskName"], task["State"]) == ("\\", "SystemScan", "Ready")
    assert task["Description"] == "hearth 2c0b120acd528ce3"


# https://learn.microsoft.com/powershell/module/microsoft.powershell.management/get-content
# (Example 2: "Get-Content -Path .\\LineNumbers.txt -TotalCount 5" prints "This is line 1." ...)
GET_CONTENT = """
This is line 1.
"""


def test_first_line() -> None:
    assert facts.FirstLine().process(lines(GET_CONTENT)) == "This is line 1."
    assert facts.FirstLine().process([]) is None


# Get-Content prints each line of the file (the page above, Example 2: "This is line 1."
# ... "This is line 5."); TextLines prints its marker first so an empty file is not a
# missing one. An authorized_keys file (OpenSSH's format: options, key type, key, comment).
GET_CONTENT_KEYS = """
hearth-file-exists
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeploy hearth

restrict,port-forwarding,permitopen="127.0.0.1:11434" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGw hearth-tunnel@k3master
"""


def test_text_lines() -> None:
    assert facts.TextLines().process(lines(GET_CONTENT_KEYS)) == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeploy hearth",
        'restrict,port-forwarding,permitopen="127.0.0.1:11434" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGw '
        "hearth-tunnel@k3master"]
    assert facts.TextLines().process(lines("hearth-file-exists")) == []  # an empty file
    assert facts.TextLines().process([]) is None  # no file


# powercfg /query output. Microsoft's page for the setting
# (https://learn.microsoft.com/windows-hardware/customize/power-settings/sleep-settings-sleep-idle-timeout:
# alias STANDBYIDLE, GUID 29f6c1db-86da-48c5-9fdb-f2b67b1f44da, value in seconds) shows no
# powercfg output; the layout is powercfg's own, as recorded from a real machine's
# `powercfg /q` (https://pastebin.com/HY9UcinN: "Current AC Power Setting Index: 0x000004b0").
POWERCFG_QUERY_STANDBYIDLE = """
Power Scheme GUID: 381b4222-f694-41f0-9685-ff5bb260df2e  (Balanced)
  Subgroup GUID: 238c9fa8-0aad-41ed-83f4-97be242c8f20  (Sleep)
    GUID Alias: SUB_SLEEP
    Power Setting GUID: 29f6c1db-86da-48c5-9fdb-f2b67b1f44da  (Sleep after)
      GUID Alias: STANDBYIDLE
      Minimum Possible Setting: 0x00000000
      Maximum Possible Setting: 0xffffffff
      Possible Settings increment: 0x00000001
      Possible Settings units: Seconds
    Current AC Power Setting Index: 0x00000708
    Current DC Power Setting Index: 0x00000384
"""


def test_power_setting() -> None:
    assert facts.PowerSetting().process(lines(POWERCFG_QUERY_STANDBYIDLE)) == {"ac": 1800, "dc": 900}
    assert facts.PowerSetting().process(["Invalid Parameters -- try \"/?\" for help"]) == {}


# https://learn.microsoft.com/archive/blogs/windowsvistanow/be-green-with-windows-vista-power-management
# (Microsoft's blog: "powercfg -DEVICEQUERY wake_armed" lists one device per line)
POWERCFG_WAKE_ARMED = """
Microsoft USB IntelliMouse Explorer
HID Keyboard Device (003)
High Definition Audio Controller
"""


def test_wake_armed_devices() -> None:
    assert facts.WakeArmedDevices().process(lines(POWERCFG_WAKE_ARMED)) == [
        "Microsoft USB IntelliMouse Explorer", "HID Keyboard Device (003)", "High Definition Audio Controller"]
    assert facts.WakeArmedDevices().process(["NONE", ""]) == []


# Get-NetAdapter: https://learn.microsoft.com/powershell/module/netadapter/get-netadapter
# (Example 9 formats Name, InterfaceDescription, ... with Format-List; the page prints no output).
# PhysicalMediaType values: "802.3" (wired Ethernet) and "Native 802.11" (Wi-Fi), the names the
# NetAdapter module gives NdisPhysicalMedium of MSFT_NetAdapter
# (https://learn.microsoft.com/previous-versions/windows/desktop/legacy/hh968170(v=vs.85)).
GET_NETADAPTER = """
Name                 : Wi-Fi
InterfaceDescription : Intel(R) Wi-Fi 6 AX201 160MHz
MacAddress           : A0-AF-BD-11-22-33
Status               : Up
PhysicalMediaType    : Native 802.11

Name                 : Ethernet 2
InterfaceDescription : Realtek PCIe GbE Family Controller
MacAddress           : D8-BB-C1-30-60-12
Status               : Up
PhysicalMediaType    : 802.3
"""


def test_net_adapters_and_wifi_detection() -> None:
    from hearth.operations.windows.wol import find_adapter, is_wifi

    adapters = facts.NetAdapters().process(lines(GET_NETADAPTER))
    assert [a["Name"] for a in adapters] == ["Wi-Fi", "Ethernet 2"]
    wired = find_adapter(adapters, "d8:bb:c1:30:60:12", None)
    assert wired["InterfaceDescription"] == "Realtek PCIe GbE Family Controller" and not is_wifi(wired)
    assert is_wifi(find_adapter(adapters, None, "Wi-Fi"))


# Get-NetAdapterPowerManagement: https://learn.microsoft.com/powershell/module/netadapter/
# get-netadapterpowermanagement (Example 3: "| Format-List -Property *"; no output printed);
# property names from MSFT_NetAdapterPowerManagementSettingData
# (https://learn.microsoft.com/windows/win32/fwp/wmi/netadaptercimprov/msft-netadapterpowermanagementsettingdata),
# values from the Setting enum of Set-NetAdapterPowerManagement -WakeOnMagicPacket (Enabled, Disabled).
GET_NETADAPTERPOWERMANAGEMENT = """
Name                         : Ethernet 2
InterfaceDescription         : Realtek PCIe GbE Family Controller
WakeOnMagicPacket            : Disabled
AllowComputerToTurnOffDevice : Enabled
"""


def test_adapter_power_management() -> None:
    power = facts.AdapterPowerManagement().process(lines(GET_NETADAPTERPOWERMANAGEMENT))
    assert power["WakeOnMagicPacket"] == "Disabled"
    assert power["AllowComputerToTurnOffDevice"] == "Enabled"


# Get-NetFirewallRule: https://learn.microsoft.com/powershell/module/netsecurity/get-netfirewallrule
# (no output printed); property names from MSFT_NetFirewallRule
# (https://learn.microsoft.com/windows/win32/fwp/wmi/wfascimprov/msft-netfirewallrule):
# Enabled prints True/False, Direction Inbound/Outbound, Action Allow/Block.
GET_NETFIREWALLRULE = """
Name        : hearth-ollama-11434
DisplayName : hearth: ollama (overlay only)
Description : hearth 16b6f6a3798427b8
Enabled     : True
Direction   : Inbound
Action      : Allow

Name        : OpenSSH-Server-In-TCP
DisplayName : OpenSSH SSH Server (sshd)
Description : Inbound rule for OpenSSH SSH Server (sshd)
Enabled     : True
Direction   : Inbound
Action      : Allow
"""


def test_firewall_rules() -> None:
    rules = facts.FirewallRules().process(lines(GET_NETFIREWALLRULE))
    assert set(rules) == {"hearth-ollama-11434", "OpenSSH-Server-In-TCP"}
    # "hearth: ollama" contains a colon: the value is split at the first " : " only
    assert rules["hearth-ollama-11434"]["DisplayName"] == "hearth: ollama (overlay only)"
    assert rules["OpenSSH-Server-In-TCP"]["Enabled"] == "True"


# Get-NetFirewallProfile: https://learn.microsoft.com/powershell/module/netsecurity/get-netfirewallprofile
# (no output printed); profiles Domain, Private, Public and Enabled True/False per MSFT_NetFirewallProfile.
GET_NETFIREWALLPROFILE = """
Name    : Domain
Enabled : True

Name    : Private
Enabled : True

Name    : Public
Enabled : False
"""


def test_firewall_profiles() -> None:
    assert facts.FirewallProfiles().process(lines(GET_NETFIREWALLPROFILE)) == {
        "Domain": True, "Private": True, "Public": False}


# `ollama list` (ollama.exe on Windows prints the same table): Ollama's release notes for
# v0.0.11 (https://github.com/ollama/ollama/releases, "ollama list: ... see which models you
# have") show "NAME SIZE MODIFIED / llama2:13b 7.3 GB 28 hours ago / ..."; later releases add an
# ID column (NAME ID SIZE MODIFIED).
OLLAMA_LIST = """
NAME            SIZE    MODIFIED
llama2:13b      7.3 GB  28 hours ago
llama2:latest   3.8 GB  4 hours ago
orca:latest     1.9 GB  35 minutes ago
vicuna:latest   3.8 GB  35 minutes ago
"""


def test_ollama_models_windows() -> None:
    assert facts.OllamaModelsWindows().process(lines(OLLAMA_LIST)) == [
        "llama2:13b", "llama2:latest", "orca:latest", "vicuna:latest"]
    assert facts.OllamaModelsWindows().process([]) == []  # not installed, or the server does not answer


def test_http_models() -> None:
    # The fact's own lines (from Invoke-RestMethod's parsed /v1/models JSON)
    assert facts.HttpModels().process(["id : gemma-4-31b\r", "answered : yes\r"]) == ["gemma-4-31b"]
    assert facts.HttpModels().process(["answered : no"]) is None


def test_long_values_continue_on_the_next_line() -> None:
    # Format-List wraps a value wider than the console under the value column
    records = ps.list_records(["Name        : x", "Description : first half", "              second half", ""])
    assert records == [{"Name": "x", "Description": "first half second half"}]


def test_every_fact_command_parses_as_powershell() -> None:
    samples = {
        "adapter": "Ethernet 2", "subgroup": "SUB_SLEEP", "setting": "STANDBYIDLE",
        "path": r"C:\ProgramData\hearth\wireguard\wg0.pub", "service": "sshd", "task": "hearth-ollama",
        "group": "hearth", "names": ("OpenSSH-Server-In-TCP",), "url": "http://127.0.0.1:1234",
        "exe": r"C:\Program Files\Ollama\ollama.exe", "address": "10.77.0.30:11434",
    }
    import inspect

    for _, cls in inspect.getmembers(facts, inspect.isclass):
        if cls.__module__ != facts.__name__:
            continue
        params = list(inspect.signature(cls.command).parameters)[1:]
        script = ps.decode(cls().command(**{p: samples[p] for p in params}))
        assert parse_problems(script) == [], (cls.__name__, script)
