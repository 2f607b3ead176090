"""The node baseline's files: sshd hardening, sudoers, sysctls, unattended upgrades.

``facts`` (all optional; defaults describe a Debian 12 VM):
    distro     -- pyinfra's LinuxDistribution dict (name, major, release_meta)
    bridge_nf  -- bool: the kernel has /proc/sys/net/bridge (br_netfilter loaded)
    container  -- the container technology the host runs in (hearth.facts.system.Container), None on
                  a real machine or VM
"""

from __future__ import annotations

from typing import Any

from hearth import systems
from hearth.configs import ConfigFile
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory

SSHD_DROPIN = "/etc/ssh/sshd_config.d/10-hearth.conf"
SUDOERS = "/etc/sudoers.d/hearth"
SYSCTL = "/etc/sysctl.d/60-hearth.conf"
K3S_MODULES = "/etc/modules-load.d/hearth-k3s.conf"
BRIDGE_MODULE = "br_netfilter"
AUTO_UPGRADES = "/etc/apt/apt.conf.d/20auto-upgrades"
UNATTENDED = "/etc/apt/apt.conf.d/52hearth-unattended-upgrades"
DEBIAN_12: dict[str, Any] = {"name": "Debian", "major": 12, "minor": None,
                             "release_meta": {"ID": "debian", "VERSION_CODENAME": "bookworm"}}


def settings(inv: Inventory, name: str) -> dict[str, Any]:
    """group_data defaults, overridden by the inventory's and then the host's settings."""
    return {**group_defaults(), **inv.settings, **inv.hosts[name].settings}


def distro(facts: dict[str, Any] | None) -> dict[str, Any]:
    """The distribution from facts (Debian 12 when unknown); refuse unsupported ones
    (``deploy.py`` skips such hosts before any role plans: see hearth.systems)."""
    value = (facts or {}).get("distro") or DEBIAN_12
    problem = systems.unsupported_reason(value)
    if problem:
        raise ValueError(problem)
    return value


def sysctls(bridge_nf: bool) -> dict[str, int]:
    """Kernel settings the cluster needs: IPv4 routing for the overlay and pods.

    No IPv6 forwarding: nothing hearth deploys routes IPv6 (overlay and pod CIDRs
    are IPv4), and turning it on makes the kernel ignore router advertisements (a
    host on SLAAC loses its IPv6 default route) and fails on hosts booted with IPv6 off.
    """
    values = {"net.ipv4.ip_forward": 1}
    if bridge_nf:  # only exists when br_netfilter is loaded (never inside a container)
        values |= {"net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1}
    return values


def automation_user(inv: Inventory, name: str) -> str:
    """The user the deploy logs in as on ``name``."""
    return inv.hosts[name].ssh_user or inv.ssh.user


def root_login(inv: Inventory, name: str) -> str:
    """sshd's PermitRootLogin: ``no`` unless asked for, or unless the deploy itself
    logs in as root (``no`` would lock the next run out): then key-only."""
    if inv.ssh.root_login or automation_user(inv, name) == "root":
        return "prohibit-password"
    return "no"


def sshd(inv: Inventory, name: str) -> ConfigFile:
    host = inv.hosts[name]
    return ConfigFile(
        dest=SSHD_DROPIN,
        template="base/sshd.conf.j2",
        context={"port": host.ssh_port or inv.ssh.port, "root_login": root_login(inv, name)},
    )


def sudoers(inv: Inventory, name: str) -> ConfigFile:
    user = automation_user(inv, name)
    return ConfigFile(dest=SUDOERS, template="base/sudoers.j2", context={"user": user}, mode="0440")


def loads_bridge_module(inv: Inventory, name: str, facts: dict[str, Any] | None) -> bool:
    """Whether base loads br_netfilter on ``name`` (and at every boot): a k3s node with its own kernel.

    k3s loads it itself when it starts, which is later in the same deploy: base would
    otherwise write the sysctl file without the bridge keys on the first run and with
    them on the second (a change on every fresh node). In a container the module and
    its sysctls are the hosting machine's, so nothing is loaded there.
    """
    return inv.hosts[name].in_k3s and not (facts or {}).get("container")


def bridge_sysctls(inv: Inventory, name: str, facts: dict[str, Any] | None) -> bool:
    """Whether the bridge sysctls are set: br_netfilter is loaded now or base loads it."""
    return bool((facts or {}).get("bridge_nf", False)) or loads_bridge_module(inv, name, facts)


def sysctl_file(inv: Inventory, name: str, facts: dict[str, Any] | None) -> ConfigFile:
    values = sysctls(bridge_sysctls(inv, name, facts))
    return ConfigFile(dest=SYSCTL, template="base/sysctl.conf.j2", context={"sysctls": values})


def k3s_modules_file() -> ConfigFile:
    """/etc/modules-load.d/hearth-k3s.conf: br_netfilter at every boot, before sysctls are applied."""
    return ConfigFile(dest=K3S_MODULES, template="base/modules-load.conf.j2", context={"modules": [BRIDGE_MODULE]})


# GPU driver and CUDA packages must move together with the kernel module and the
# container toolkit: unattended upgrades leave them to the nvidia role (regexes
# matched against the start of package names).
NVIDIA_HELD = ("nvidia-", "libnvidia-", "libcuda", "cuda-", "firmware-nvidia-",
               "linux-modules-nvidia-", "linux-objects-nvidia-", "linux-signatures-nvidia-",
               "xserver-xorg-video-nvidia")


def unattended(facts: dict[str, Any] | None, nvidia: bool = False) -> list[ConfigFile]:
    """Daily security updates only: the distribution's own origin lists are cleared
    (``#clear``) and replaced by its security origin; NVIDIA/CUDA held back on GPU hosts."""
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
                   context={"origins": origins, "patterns": patterns, "distro": dist["name"],
                            "blacklist": NVIDIA_HELD if nvidia else ()}),
    ]


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """Every baseline file written on ``name``."""
    if inv.hosts[name].os != "linux" or not inv.hosts[name].managed:
        return []
    distro(facts)
    files = [sshd(inv, name), sysctl_file(inv, name, facts)]
    if loads_bridge_module(inv, name, facts):
        files.append(k3s_modules_file())
    if (inv.hosts[name].ssh_user or inv.ssh.user) != "root":
        files.append(sudoers(inv, name))
    if settings(inv, name)["unattended_upgrades"]:
        files.extend(unattended(facts, nvidia=any(g.vendor == "nvidia" for g in inv.hosts[name].gpus)))
    return files
