"""What the lab builds, read from an inventory.

The lab reads the same inventory format as a real lab. It needs, per Linux host,
an IPv4 address on ``lan.cidr`` and a MAC address (the lab's NICs get exactly that
MAC, so Wake-on-LAN packets can name them). Windows hosts and ``managed: false``
hosts are not built.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.inventory import InventoryError, load_inventory
from hearth.lab.sh import LabError

# A second, private lab (own bridge, nft table, namespace prefix and HEARTH_LAB_ROOT)
# can run beside the shared one: the names come from the environment.
BRIDGE = os.environ.get("HEARTH_LAB_BRIDGE", "hearth-lan")
ARTIFACT_PORT = 8585
APT_PROXY_PORT = 3142
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True)
class MachineSpec:
    """One lab machine: a host of the inventory."""

    name: str
    address: str
    mac: str
    sleeps: bool = False
    kind: str = "container"
    arch: str = "amd64"
    memory_mb: int = 1024
    cpus: int = 2


@dataclass(frozen=True)
class LabSpec:
    """The whole lab: the LAN, the machines and the SSH material paths."""

    name: str
    cidr: ipaddress.IPv4Network
    host_ip: str
    machines: tuple[MachineSpec, ...]
    ssh_user: str
    ssh_port: int
    ssh_key: Path
    known_hosts: Path

    @property
    def broadcast(self) -> str:
        """The LAN's broadcast address (magic packets go here)."""
        return str(self.cidr.broadcast_address)

    @property
    def artifact_url(self) -> str:
        """Base URL of the artifact server on the bridge."""
        return f"http://{self.host_ip}:{ARTIFACT_PORT}"

    def machine(self, name: str) -> MachineSpec:
        """The machine called ``name``, or a LabError listing the known ones."""
        for m in self.machines:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.machines)
        raise LabError(f"no lab machine named {name!r} (known: {known})")


def _raw_inventory(path: Path) -> dict[str, Any]:
    """The inventory, validated as for any deploy, as plain data."""
    try:
        inv = load_inventory(path)
    except InventoryError as exc:
        raise LabError(f"{path}: invalid inventory: {exc}") from exc
    return inv.model_dump(mode="json")


def load_spec(path: str | Path) -> LabSpec:
    """Read ``path`` and check it describes something the lab can build."""
    path = Path(path)
    data = _raw_inventory(path)
    where = str(path)
    try:
        cidr = ipaddress.IPv4Network(data["lan"]["cidr"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LabError(f"{where}: lan.cidr must be an IPv4 network ({exc})") from exc
    ssh = data.get("ssh") or {}
    if not ssh.get("key") or not ssh.get("known_hosts"):
        raise LabError(f"{where}: the lab needs ssh.key and ssh.known_hosts paths")
    host_ip = str(next(cidr.hosts()))
    machines: list[MachineSpec] = []
    seen: dict[str, str] = {host_ip: "(this machine, the bridge)"}
    for name, host in (data.get("hosts") or {}).items():
        if (host.get("os") or "linux") != "linux" or host.get("managed") is False:
            continue  # managed: false: a box hearth never touches is no lab machine
        machines.append(_machine(where, cidr, name, host, seen))
    if not machines:
        raise LabError(f"{where}: no Linux hosts to build")
    return LabSpec(
        name=str(data.get("name") or "lab"),
        cidr=cidr,
        host_ip=host_ip,
        machines=tuple(machines),
        ssh_user=str(ssh.get("user") or "hearth"),
        ssh_port=int(ssh.get("port") or 22),
        ssh_key=Path(ssh["key"]),
        known_hosts=Path(ssh["known_hosts"]),
    )


def _machine(
    where: str, cidr: ipaddress.IPv4Network, name: str, host: dict[str, Any], seen: dict[str, str]
) -> MachineSpec:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name):
        raise LabError(f"{where}: host {name!r}: lab machine names are [a-z0-9-], <= 31 chars")
    try:
        addr = ipaddress.IPv4Address(host.get("address"))
    except ValueError as exc:
        raise LabError(f"{where}: host {name}: address must be an IPv4 address") from exc
    if addr not in cidr or addr in (cidr.network_address, cidr.broadcast_address):
        raise LabError(f"{where}: host {name}: address {addr} is not a host address of {cidr}")
    mac = str(host.get("mac") or "").lower()
    if not _MAC.match(mac):
        raise LabError(f"{where}: host {name}: the lab needs a mac like 02:68:65:61:72:10")
    for key in (str(addr), mac):
        if key in seen:
            raise LabError(f"{where}: host {name}: {key} is already used by {seen[key]}")
        seen[key] = name
    sleeps = bool((host.get("sleep") or {}).get("sleeps"))
    lab = host.get("lab") or {}
    kind, arch = str(lab.get("kind") or "container"), str(host.get("arch") or "amd64")
    if kind == "vm" and arch != "amd64":
        raise LabError(
            f"{where}: host {name}: lab.kind vm is amd64 only (arch is {arch}); "
            "an arm64 host is an emulated container: drop lab.kind or set it to container"
        )
    return MachineSpec(
        name=name, address=str(addr), mac=mac, sleeps=sleeps, kind=kind, arch=arch,
        memory_mb=int(lab.get("memory_mb") or 1024), cpus=int(lab.get("cpus") or 2),
    )  # fmt: skip
