"""Turn the one inventory into pyinfra groups and host data.

``inventory/<lab>.py`` calls :func:`pyinfra_groups` on the YAML file next to it.
An invalid inventory prints one line per problem and exits non-zero here, while
pyinfra is still reading the inventory: no host is connected to.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hearth.inventory.load import InventoryError, load_inventory
from hearth.inventory.model import Host, Inventory

HostEntry = tuple[str, dict[str, Any]]

# Group name -> which hosts belong to it. deploy.py applies roles by these groups.
GROUPS: dict[str, Any] = {
    "linux": lambda h: h.os == "linux",
    "windows": lambda h: h.os == "windows",
    "k3s_servers": lambda h: "k3s_server" in h.roles,
    "k3s_agents": lambda h: "k3s_agent" in h.roles,
    "gateway": lambda h: "gateway" in h.roles,
    "nvidia": lambda h: h.os == "linux" and any(g.vendor == "nvidia" for g in h.gpus),
    "ollama": lambda h: "ollama" in h.engines,
    "vllm": lambda h: "vllm" in h.engines,
    "lmstudio": lambda h: "lmstudio" in h.engines,
    "sleepers": lambda h: h.sleep.sleeps,
}


def host_data(inv: Inventory, path: Path, name: str, host: Host) -> dict[str, Any]:
    """pyinfra host data: how to connect, where the inventory is, setting overrides."""
    user = host.ssh_user or inv.ssh.user
    data: dict[str, Any] = {
        "ssh_hostname": host.address,
        "ssh_user": user,
        "ssh_port": host.ssh_port or inv.ssh.port,
        # A changed host key is a loud error, never a silent accept.
        "ssh_strict_host_key_checking": "yes",
        "hearth_inventory": str(path.resolve()),
        "hearth_host": name,
    }
    if inv.ssh.key:
        data["ssh_key"] = str(Path(inv.ssh.key).expanduser())
    if inv.ssh.known_hosts:
        data["ssh_known_hosts_file"] = str(Path(inv.ssh.known_hosts).expanduser())
    if host.os == "windows":
        # The SSH user is an administrator and sshd hands the line to PowerShell:
        # no sudo, and no `sh -c` wrapper (hearth's operations send PowerShell).
        data["_shell_executable"] = None
        data["hearth_os"] = "windows"
    elif user != "root":
        data["_sudo"] = True
    data.update(inv.settings)
    data.update(host.settings)
    return data


def deployable(host: Host) -> bool:
    """Hosts pyinfra connects to: every host (Windows hosts get the windows role over
    SSH + PowerShell, see roles/windows), except those marked ``managed: false``
    (never connected to; the gateway still routes to them from the inventory)."""
    return host.os in ("linux", "windows") and host.managed


def build_groups(inv: Inventory, path: Path) -> dict[str, list[HostEntry]]:
    """Group name -> [(host name, host data)] for every group with members."""
    groups: dict[str, list[HostEntry]] = {}
    for group, member in GROUPS.items():
        entries = [
            (name, host_data(inv, path, name, host))
            for name, host in inv.hosts.items()
            if member(host) and deployable(host)
        ]
        if entries:
            groups[group] = entries
    return groups


def pyinfra_groups(inventory_py: str, yaml_name: str | None = None) -> dict[str, list[HostEntry]]:
    """Load the YAML inventory beside an ``inventory/<lab>.py`` file, or exit.

    Example (the whole of ``inventory/lab.py``):
        globals().update(pyinfra_groups(__file__))
    """
    from hearth.deploy_data import group_defaults

    py = Path(inventory_py)
    path = py.with_name(yaml_name or f"{py.stem}.yml")
    try:
        inv = load_inventory(path, group_defaults())
    except InventoryError as exc:
        print(f"hearth: invalid inventory, nothing was touched ({len(exc.lines)} problems):",
              file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(2) from None
    from hearth.hostkey import guard_deploy

    guard_deploy(inv, path)  # a changed host key names the host and both fingerprints
    from hearth.configs.tunnel import missing_host_keys

    if missing := missing_host_keys(inv):  # reach ssh_tunnel: the gateway's tunnel checks this key
        print("hearth: nothing was touched:\n" + "\n".join(f"  {path}: {line}" for line in missing), file=sys.stderr)
        raise SystemExit(2)
    return build_groups(inv, path)
