"""Wake-on-LAN on a Windows host: the wired NIC wakes the box on a magic packet."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, operation

from hearth import powershell as ps
from hearth.facts.windows import AdapterPowerManagement, NetAdapters, WakeArmedDevices
from hearth.operations.windows import run

WIFI_MEDIA = ("802.11", "wireless", "wi-fi", "wifi")


def find_adapter(adapters: list[dict[str, str]], mac: str | None, name: str | None) -> dict[str, str]:
    """The adapter with this MAC (any separator, any case) or this name; an error otherwise."""
    def norm(value: str) -> str:
        return value.replace("-", ":").lower()

    for adapter in adapters:
        if mac and norm(adapter.get("MacAddress", "")) == norm(mac):
            return adapter
        if name and not mac and adapter.get("Name") == name:
            return adapter
    seen = ", ".join(f"{a.get('Name')} ({a.get('MacAddress')})" for a in adapters) or "none"
    raise OperationError(f"no physical network adapter {'with MAC ' + mac if mac else 'named ' + str(name)} "
                         f"(adapters: {seen})")


def is_wifi(adapter: dict[str, str]) -> bool:
    media = adapter.get("PhysicalMediaType", "").lower()
    return any(word in media for word in WIFI_MEDIA)


@operation()
def nic_wakes(mac: str | None = None, adapter: str | None = None):
    """
    Let the wired network adapter wake the computer on a magic packet.

    Two switches, both of which a driver update can reset (seed 000): the adapter's
    ``WakeOnMagicPacket`` power-management setting, and Windows' "Allow this device
    to wake the computer" (``powercfg /deviceenablewake``). A Wi-Fi adapter is
    refused: a sleeping Wi-Fi NIC is not on the network to hear the packet.

    + mac: the adapter's MAC address (preferred: names change with drivers)
    + adapter: the adapter's name (``Ethernet``) when no MAC is given

    **Example:**

    .. code:: python

        wol.nic_wakes(name="Wake-on-LAN on the wired NIC", mac="d8:bb:c1:30:60:12")
    """
    nic = find_adapter(host.get_fact(NetAdapters) or [], mac, adapter)
    label = nic["Name"]
    if is_wifi(nic):
        raise OperationError(f"{label} is a Wi-Fi adapter ({nic.get('PhysicalMediaType')}): "
                             "Wake-on-LAN needs the wired NIC")
    power = host.get_fact(AdapterPowerManagement, adapter=label) or {}
    magic = power.get("WakeOnMagicPacket")
    if magic == "Unsupported":
        raise OperationError(f"{label} does not support wake on magic packet (driver or NIC)")
    if magic != "Enabled":
        yield run(f"Set-NetAdapterPowerManagement -Name {ps.quote(label)} -WakeOnMagicPacket Enabled -NoRestart")
    description = nic.get("InterfaceDescription", label)
    armed = description in (host.get_fact(WakeArmedDevices) or [])
    if not armed:
        yield run(ps.native(f"powercfg.exe /deviceenablewake {ps.quote(description)}"))
    if magic == "Enabled" and armed:
        host.noop(f"{label} wakes the computer on a magic packet")
