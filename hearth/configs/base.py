"""The node baseline's files: sshd hardening, sudoers, sysctls, unattended upgrades.

``facts`` (all optional; defaults describe a Debian 12 VM):
    distro     -- pyinfra's LinuxDistribution dict (name, major, release_meta)
    bridge_nf  -- bool: the kernel has /proc/sys/net/bridge (br_netfilter loaded)
"""

from __future__ import annotations

from typing import Any

from hearth.configs import ConfigFile
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory

SSHD_DROPIN = "/etc/ssh/sshd_config.d/10-hearth.conf"
SUDOERS = "/etc/sudoers.d/hearth"
SYSCTL = "/etc/sysctl.d/60-hearth.conf"
AUTO_UPGRADES = "/etc/apt/apt.conf.d/20auto-upgrades"
UNATTENDED = "/etc/apt/apt.conf.d/52hearth-unattended-upgrades"
DEBIAN_12: dict[str, Any] = {"name": "Debian", "major": 12, "minor": None,
                             "release_meta": {"ID": "debian", "VERSION_CODENAME": "bookworm"}}
SUPPORTED = {("Debian", 12), ("Ubuntu", 22), ("Ubuntu", 24)}


def settings(inv: Inventory, name: str) -> dict[str, Any]:
    """group_data defaults, overridden by the inventory's and then the host's settings."""
    return {**group_defaults(), **inv.settings, **inv.hosts[name].settings}


def distro(facts: dict[str, Any] | None) -> dict[str, Any]:
    """The distribution from facts (Debian 12 when unknown); refuse unsupported ones."""
    value = (facts or {}).get("distro") or DEBIAN_12
    if (value.get("name"), value.get("major")) not in SUPPORTED:
        wanted = ", ".join(f"{n} {m}" for n, m in sorted(SUPPORTED))
        raise ValueError(f"unsupported distribution {value.get('name')} {value.get('major')} (want {wanted})")
    return value


def sysctls(bridge_nf: bool) -> dict[str, int]:
    """Kernel settings the cluster needs: routing for the overlay and pods."""
    values = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}
    if bridge_nf:  # only exists when br_netfilter is loaded (never inside a container)
        values |= {"net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1}
    return values


def sshd(inv: Inventory, name: str) -> ConfigFile:
    host = inv.hosts[name]
    return ConfigFile(
        dest=SSHD_DROPIN,
        template="base/sshd.conf.j2",
        context={
            "port": host.ssh_port or inv.ssh.port,
            "root_login": "prohibit-password" if inv.ssh.root_login else "no",
        },
    )


def sudoers(inv: Inventory, name: str) -> ConfigFile:
    user = inv.hosts[name].ssh_user or inv.ssh.user
    return ConfigFile(dest=SUDOERS, template="base/sudoers.j2", context={"user": user}, mode="0440")


def sysctl_file(facts: dict[str, Any] | None) -> ConfigFile:
    bridge = bool((facts or {}).get("bridge_nf", False))
    return ConfigFile(dest=SYSCTL, template="base/sysctl.conf.j2", context={"sysctls": sysctls(bridge)})


def unattended(facts: dict[str, Any] | None) -> list[ConfigFile]:
    """Daily security updates; the allowed origins differ between Debian and Ubuntu."""
    dist = distro(facts)
    if dist["name"] == "Ubuntu":
        origins = ["${distro_id}:${distro_codename}-security", "${distro_id}ESMApps:${distro_codename}-apps-security"]
        patterns: list[str] = []
    else:
        origins = []
        patterns = ["origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
                    "origin=Debian,codename=${distro_codename},label=Debian-Security"]
    return [
        ConfigFile(dest=AUTO_UPGRADES, template="base/20auto-upgrades.j2"),
        ConfigFile(dest=UNATTENDED, template="base/unattended-upgrades.j2",
                   context={"origins": origins, "patterns": patterns, "distro": dist["name"]}),
    ]


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """Every baseline file written on ``name``."""
    if inv.hosts[name].os != "linux":
        return []
    distro(facts)
    files = [sshd(inv, name), sysctl_file(facts)]
    if (inv.hosts[name].ssh_user or inv.ssh.user) != "root":
        files.append(sudoers(inv, name))
    if settings(inv, name)["unattended_upgrades"]:
        files.extend(unattended(facts))
    return files
