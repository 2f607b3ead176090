"""What the windows role sets on an ``os: windows`` host, computed from the inventory.

The role (roles/windows) turns these values into hearth's PowerShell operations;
the bootstrap script (``hearth windows bootstrap``) and ``hearth render`` lay out
the same values through ``templates/windows/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from hearth.configs import ConfigFile
from hearth.configs import ollama as ollama_configs
from hearth.configs import overlay as overlay_configs
from hearth.configs.base import settings
from hearth.inventory import Inventory
from hearth.inventory.model import Host, Windows
from hearth.operations.windows.firewall import Rule

SSHD_CONFIG = r"C:\ProgramData\ssh\sshd_config"
ADMIN_KEYS = r"C:\ProgramData\ssh\administrators_authorized_keys"
OPENSSH_ANY_RULE = "OpenSSH-Server-In-TCP"  # added by the OpenSSH capability, open to any address
POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
OLLAMA_MODELS = r"C:\ProgramData\Ollama\models"
# Ollama binds the overlay IP: at boot, give the WireGuard tunnel service time to hold it.
OLLAMA_START_DELAY_S = 20


def spec(host: Host) -> Windows:
    return host.windows or Windows()


@dataclass(frozen=True)
class Nic:
    """How the role finds the NIC that wakes the box: by MAC, else by name."""

    mac: str | None
    name: str | None


def wake_nic(inv: Inventory, name: str) -> Nic | None:
    host = inv.hosts[name]
    nic = spec(host).nic
    mac = nic.mac or (None if nic.name else host.mac)
    if not (mac or nic.name):
        return None
    return Nic(mac=mac, name=nic.name)


def idle_minutes(inv: Inventory, name: str) -> int:
    """Sleep after this many idle minutes; 0 (never) for a box that does not sleep."""
    host = inv.hosts[name]
    return host.sleep.idle_minutes if host.sleep.sleeps else 0


def reach(inv: Inventory, name: str) -> str:
    return spec(inv.hosts[name]).reach


def on_overlay(inv: Inventory, name: str) -> bool:
    """The box is a WireGuard peer (hearth makes the tunnel) rather than reached by SSH tunnel."""
    return inv.overlay.kind == "wireguard" and reach(inv, name) == "overlay"


def bind_address(inv: Inventory, name: str) -> str:
    """Where the box's model servers listen: its overlay IP, or loopback behind an SSH tunnel."""
    return "127.0.0.1" if reach(inv, name) == "ssh_tunnel" else str(inv.hosts[name].overlay_ip)


def ollama_environment(inv: Inventory, name: str) -> dict[str, str]:
    """The machine environment Ollama reads on Windows: the Linux values, with the model
    store in ``C:\\ProgramData\\Ollama\\models`` (unless a serve's ``env`` says) and the bind
    on the overlay IP or, behind an SSH tunnel, loopback."""
    if not ollama_configs.ollama_serves(inv, name):
        return {}
    env = ollama_configs.environment(inv, name)
    serve_env = {k: v for serve in ollama_configs.ollama_serves(inv, name) for k, v in serve.env.items()}
    # `ollama serve` runs as SYSTEM (a boot task): keep its models in a place people find
    env["OLLAMA_MODELS"] = serve_env.get("OLLAMA_MODELS", OLLAMA_MODELS)
    port = ollama_configs.ollama_serves(inv, name)[0].listen_port
    env["OLLAMA_HOST"] = f"{bind_address(inv, name)}:{port}"
    return env


def lmstudio_url(inv: Inventory, name: str) -> str | None:
    serves = [s for s in inv.hosts[name].serves if s.engine == "lmstudio"]
    if not serves:
        return None
    return f"http://{bind_address(inv, name)}:{serves[0].listen_port}"


def ssh_port(inv: Inventory, name: str) -> int:
    return inv.hosts[name].ssh_port or inv.ssh.port


def tunnel_source(inv: Inventory, name: str) -> str | None:
    """reach ssh_tunnel: the gateway host's LAN address (/32) when the admin LAN does not
    already hold it, so its tunnel can reach the box's SSH port."""
    if reach(inv, name) != "ssh_tunnel" or inv.gateway is None:
        return None
    try:
        address = ip_address(inv.hosts[inv.gateway.host].address)
    except ValueError:
        return None  # a name: validation asks for an address the firewall can use
    return None if address in inv.lan.admin else f"{address}/32"


def firewall_rules(inv: Inventory, name: str) -> list[Rule]:
    """SSH from the admin LAN and the overlay; WireGuard from the LAN; each model
    server's port from the overlay only (nothing from the LAN)."""
    host = inv.hosts[name]
    overlay = str(inv.overlay.cidr)
    port = ssh_port(inv, name)
    sources = [str(inv.lan.admin), overlay]
    gateway = tunnel_source(inv, name)
    if gateway:
        sources.append(gateway)
    rules = [Rule(f"hearth-ssh-{port}", "hearth: OpenSSH (admin LAN and overlay)", "TCP", port,
                  tuple(dict.fromkeys(sources)))]
    if on_overlay(inv, name):
        rules.append(Rule(f"hearth-wireguard-{inv.overlay.port}", "hearth: WireGuard (LAN)", "UDP",
                          inv.overlay.port, (str(inv.lan.cidr),)))
        for serve_port in sorted({s.listen_port for s in host.serves}):
            engines = "/".join(sorted({s.engine for s in host.serves if s.listen_port == serve_port}))
            rules.append(Rule(f"hearth-{engines.replace('/', '-')}-{serve_port}",
                              f"hearth: {engines} (overlay only)", "TCP", serve_port, (overlay,)))
    return rules


def sshd_config(inv: Inventory, name: str) -> ConfigFile:
    return ConfigFile(dest=SSHD_CONFIG, template="windows/sshd_config.j2",
                      context={"host": name, "port": ssh_port(inv, name)})


def wg_config(inv: Inventory, name: str, keys: dict[str, str] | None = None) -> ConfigFile:
    """The tunnel's config without its private key (added on the box)."""
    host = inv.hosts[name]
    return ConfigFile(
        dest=f"C:\\ProgramData\\hearth\\wireguard\\{inv.overlay.interface}.conf",
        template="windows/wg.conf.j2",
        context={
            "host": name,
            "address": f"{host.overlay_ip}/{inv.overlay.cidr.prefixlen}",
            "port": inv.overlay.port,
            "peers": overlay_configs.peers(inv, name, keys or {}),
            "keepalive": overlay_configs.KEEPALIVE,
        },
    )


def stamp(text: str) -> str:
    return "hearth " + hashlib.sha256(text.encode()).hexdigest()[:16]


def paths(inv: Inventory, name: str) -> dict[str, str]:
    """Where the programs hearth expects live on this box (group_data/windows.py)."""
    data = settings(inv, name)
    return {key: str(data[key]) for key in
            ("windows_ollama_exe", "windows_wireguard_dir", "windows_sshd_exe", "windows_ollama_task")}


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """The files hearth writes on a Windows host (for ``hearth render``)."""
    if inv.hosts[name].os != "windows":
        return []
    files = [sshd_config(inv, name)]
    if on_overlay(inv, name):
        files.append(wg_config(inv, name, (facts or {}).get("wireguard_keys")))
    return files


OPENSSH_CAPABILITY = "OpenSSH.Server~~~~0.0.1.0"
SSH_KEYGEN = r"C:\Windows\System32\OpenSSH\ssh-keygen.exe"


def bootstrap_script(inv: Inventory, name: str, deploy_key: str) -> ConfigFile:
    """The one-time script ``hearth windows bootstrap`` writes for a person to run on the box.

    ``deploy_key`` is the public half of ``ssh.key`` (one ``ssh-ed25519 AAAA... comment`` line).
    """
    from hearth import powershell as ps
    from hearth.operations.windows.firewall import new_rule_line

    host = inv.hosts[name]
    rule = firewall_rules(inv, name)[0]  # SSH: the same rule (and stamp) the role keeps
    sshd = sshd_config(inv, name).render()
    if "\n'@" in sshd:
        raise ValueError("sshd_config must not contain a line starting with '@")
    filename = f"hearth-bootstrap-{name}.ps1"
    return ConfigFile(
        dest=filename,
        template="windows/bootstrap.ps1.j2",
        context={
            "host": name,
            "address": host.address,
            "filename": filename,
            "port": rule.port,
            "sources": ", ".join(rule.remote),
            "user": host.ssh_user or inv.ssh.user,
            "capability": ps.quote(OPENSSH_CAPABILITY),
            "powershell": ps.quote(POWERSHELL),
            "admin_keys": ps.quote(ADMIN_KEYS),
            "deploy_key": ps.quote(deploy_key.strip() + "\n"),
            "sshd_config": sshd,
            "sshd_config_path": ps.quote(SSHD_CONFIG),
            "sshd_exe": ps.quote(paths(inv, name)["windows_sshd_exe"]),
            "openssh_rule": ps.quote(OPENSSH_ANY_RULE),
            "rule_name": ps.quote(rule.name),
            "rule_line": new_rule_line(rule),
            "ssh_keygen": ps.quote(SSH_KEYGEN),
        },
    )
