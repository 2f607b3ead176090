"""The NVIDIA stack's files: driver sources and pin, nouveau blacklist, toolkit repo, power limit,
and the cluster manifests (device plugin, RuntimeClass) for the k3s server's auto-deploy folder.

``facts`` (all optional; defaults describe a Debian 12 VM):
    distro -- pyinfra's LinuxDistribution dict (name, major, release_meta)

Hosts: those with an NVIDIA GPU in the inventory (group ``nvidia``). Settings come
from ``group_data/nvidia.py`` overridden by the inventory (``settings:``).
"""

from __future__ import annotations

import re
from typing import Any

from hearth.configs import ConfigFile
from hearth.configs.base import distro, settings
from hearth.inventory import Inventory
from hearth.inventory.model import Host

NONFREE_SOURCES = "/etc/apt/sources.list.d/hearth-debian-nonfree.sources"
DRIVER_PIN = "/etc/apt/preferences.d/hearth-nvidia-driver"
NOUVEAU_BLACKLIST = "/etc/modprobe.d/hearth-blacklist-nouveau.conf"
TOOLKIT_SOURCES = "/etc/apt/sources.list.d/hearth-nvidia-container-toolkit.list"
TOOLKIT_KEY = "/etc/apt/keyrings/hearth-nvidia-container-toolkit.asc"
POWER_LIMIT_UNIT = "/etc/systemd/system/hearth-nvidia-power-limit.service"
MANIFESTS = "/var/lib/rancher/k3s/server/manifests"
DEVICE_PLUGIN = f"{MANIFESTS}/hearth-nvidia-device-plugin.yaml"
RUNTIME_CLASS = f"{MANIFESTS}/hearth-nvidia-runtimeclass.yaml"
CONTAINERD_CONFIG = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
RUNTIME_BINARY = "/usr/bin/nvidia-container-runtime"
PERSISTENCED_UNIT = "/lib/systemd/system/nvidia-persistenced.service"
PERSISTENCED_DROPIN = "/etc/systemd/system/nvidia-persistenced.service.d/hearth.conf"
TOOLKIT_PACKAGE = "nvidia-container-toolkit"

# Label the device plugin selects (and k3s puts on GPU nodes); NVIDIA's GPU operator uses the same.
DEFAULT_GPU_LABELS = {"nvidia.com/gpu.present": "true"}
# The taint GPU nodes commonly carry (seed 001); the device plugin always tolerates it.
GPU_TAINT_KEY = "nvidia.com/gpu"
# k3s ships an `nvidia` RuntimeClass itself since v1.29.0+k3s1 (its `runtimes` component).
K3S_RUNTIMECLASSES_SINCE = (1, 29)

# Debian's compute-only set: the kernel module (dkms), nvidia-smi, CUDA and NVML
# libraries, the GSP firmware, persistenced; no X server (nvidia-driver pulls one in).
DEBIAN_HEADLESS = ["nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "libnvidia-ml1",
                   "firmware-nvidia-gsp", "nvidia-persistenced"]  # fmt: skip
# In a container (LXC GPU passthrough on Proxmox, systemd-nspawn) the kernel side is the
# hosting machine's: its module, the GPU's firmware and the persistence daemon that keeps
# the module's state. dkms could build nothing there (no kernel of its own), yet its
# package would pull in a compiler toolchain. Only the user-space half is installed; the
# branch pin keeps it on the branch the host's module must be on as well.
DEBIAN_USERSPACE = ["nvidia-smi", "libcuda1", "libnvidia-ml1"]
BRANCH = re.compile(r"^\d{3,4}$")


def nvidia_host(host: Host) -> bool:
    return host.os == "linux" and any(gpu.vendor == "nvidia" for gpu in host.gpus)


def nvidia_hosts(inv: Inventory) -> list[str]:
    return [name for name, host in inv.hosts.items() if nvidia_host(host)]


def branch(inv: Inventory, name: str) -> str:
    value = str(settings(inv, name)["nvidia_driver_branch"])
    if not BRANCH.match(value):
        raise ValueError(f"nvidia_driver_branch {value!r} is not a driver branch such as '535' or '570'")
    return value


def is_debian(facts: dict[str, Any] | None) -> bool:
    return distro(facts)["name"] == "Debian"


def driver_packages(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[str]:
    """The distribution's driver packages for the pinned branch (headless: no X server);
    in a container only the user-space half (the kernel side is the hosting machine's).

    Example:
        driver_packages(inv, "eyes", {"distro": UBUNTU_24})
        # ["nvidia-headless-535-server", "nvidia-utils-535-server"]
        driver_packages(inv, "eyes", {"distro": UBUNTU_24, "container": "lxc"})
        # ["nvidia-utils-535-server", "libnvidia-compute-535-server"]
    """
    b = branch(inv, name)
    in_container = bool((facts or {}).get("container"))
    if is_debian(facts):
        return list(DEBIAN_USERSPACE if in_container else DEBIAN_HEADLESS)
    if in_container:
        return [f"nvidia-utils-{b}-server", f"libnvidia-compute-{b}-server"]
    return [f"nvidia-headless-{b}-server", f"nvidia-utils-{b}-server"]


def manages_persistenced(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> bool:
    """Whether hearth installs nvidia-persistenced here (not in a container: the host's job)."""
    return bool(settings(inv, name)["nvidia_manage_driver"]) and not (facts or {}).get("container")


def kernel_headers(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[str]:
    """Headers dkms builds the module against (Debian's metapackage follows the running flavour)."""
    if not is_debian(facts) or (facts or {}).get("container"):
        return []  # Ubuntu's -server packages ship prebuilt modules; a container has no kernel of its own
    return [f"linux-headers-{inv.hosts[name].arch}"]


def toolkit_package(inv: Inventory, name: str) -> str:
    version = str(settings(inv, name)["nvidia_toolkit_version"])
    return f"{TOOLKIT_PACKAGE}={version}" if version else TOOLKIT_PACKAGE


def nonfree_sources(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> ConfigFile:
    s = settings(inv, name)
    codename = distro(facts)["release_meta"].get("VERSION_CODENAME", "bookworm")
    return ConfigFile(
        dest=NONFREE_SOURCES,
        template="nvidia/debian-nonfree.sources.j2",
        context={
            "mirror": s["nvidia_debian_mirror"],
            "security_mirror": s["nvidia_debian_security_mirror"],
            "suites": [codename, f"{codename}-updates"],
            "security_suite": f"{codename}-security",
        },
    )


def driver_pin(inv: Inventory, name: str) -> ConfigFile:
    """apt prefers the pinned branch for every driver package (1001) and may install the
    packages hearth asks for only in that branch (Debian's other versions: -1), so a branch
    the archive lacks fails the install instead of installing another one.

    apt's version pins match a prefix (``535.*``), not a glob, and the first matching
    record wins; packages with their own version (nvidia-persistenced, glx helpers) are
    only preferred, and NVIDIA's own repository (the toolkit) is not Debian's.
    """
    strict = [p for p in DEBIAN_HEADLESS if p != "nvidia-persistenced"]
    return ConfigFile(
        dest=DRIVER_PIN,
        template="nvidia/driver-pin.j2",
        context={"prefer": " ".join(["nvidia-*", "libnvidia-*", "libcuda*", "firmware-nvidia-*"]),
                 "strict": " ".join(strict), "branch": branch(inv, name)},
    )  # fmt: skip


def persistenced_dropin() -> ConfigFile:
    """nvidia-persistenced runs only where the driver's device exists (skipped, not failed)."""
    return ConfigFile(dest=PERSISTENCED_DROPIN, template="nvidia/persistenced-dropin.conf.j2")


def nouveau_blacklist() -> ConfigFile:
    return ConfigFile(dest=NOUVEAU_BLACKLIST, template="nvidia/blacklist-nouveau.conf.j2")


def toolkit_sources(inv: Inventory, name: str) -> ConfigFile:
    s = settings(inv, name)
    suite = str(s["nvidia_toolkit_repo_suite"])
    components = str(s["nvidia_toolkit_repo_components"])
    return ConfigFile(
        dest=TOOLKIT_SOURCES,
        template="nvidia/nvidia-container-toolkit.list.j2",
        context={"url": s["nvidia_toolkit_repo_url"], "key": TOOLKIT_KEY,
                 "suite": suite, "components": components},
    )  # fmt: skip


def power_limits(host: Host) -> list[tuple[int, int]]:
    """(GPU index, watts) for every NVIDIA GPU with a power limit in the inventory."""
    return [(i, gpu.power_limit_w) for i, gpu in enumerate(host.gpus)
            if gpu.vendor == "nvidia" and gpu.power_limit_w is not None]  # fmt: skip


def power_limit_unit(inv: Inventory, name: str) -> ConfigFile | None:
    """A oneshot unit setting each GPU's power limit at boot (nvidia-smi -pl is not persistent)."""
    limits = power_limits(inv.hosts[name])
    if not limits:
        return None
    smi = str(settings(inv, name)["nvidia_smi"])
    smi = smi if smi.startswith("/") else f"/usr/bin/{smi}"  # the driver packages' nvidia-smi
    return ConfigFile(dest=POWER_LIMIT_UNIT, template="nvidia/power-limit.service.j2",
                      context={"nvidia_smi": smi, "limits": limits})  # fmt: skip


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """Every NVIDIA file on one host: GPU hosts' own, and the cluster manifests on k3s servers."""
    host = inv.hosts[name]
    out: list[ConfigFile] = cluster_files(inv) if "k3s_server" in host.roles else []
    if not nvidia_host(host):
        return out
    if settings(inv, name)["nvidia_manage_driver"]:
        if is_debian(facts):
            out += [nonfree_sources(inv, name, facts), driver_pin(inv, name)]
        out.append(nouveau_blacklist())
    out.append(toolkit_sources(inv, name))
    if settings(inv, name)["nvidia_persistenced"]:
        out.append(persistenced_dropin())
    unit = power_limit_unit(inv, name)
    if unit is not None:
        out.append(unit)
    return out


# --- cluster manifests (on the k3s server) ---------------------------------------------


def gpu_labels(inv: Inventory) -> dict[str, str]:
    """Labels GPU nodes carry: the k3s section's ``gpu_labels`` when it has them."""
    return dict(getattr(inv.k3s, "gpu_labels", None) or DEFAULT_GPU_LABELS)


def parse_taint(taint: str) -> dict[str, str]:
    """k3s's ``key[=value]:Effect`` as a toleration matching exactly that taint.

    Example:
        parse_taint("nvidia.com/gpu=true:NoSchedule")
        # {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    """
    spec, _, effect = taint.rpartition(":")
    key, has_value, value = spec.partition("=")
    toleration = {"key": key, "operator": "Equal" if has_value else "Exists"}
    if has_value:
        toleration["value"] = value
    toleration["effect"] = effect
    return toleration


def tolerations(inv: Inventory) -> list[dict[str, str]]:
    """The GPU taint (any value, NoSchedule), the inventory's GPU taints, critical add-ons."""
    out = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    for taint in getattr(inv.k3s, "gpu_taints", None) or []:
        toleration = parse_taint(taint)
        if toleration["key"] != GPU_TAINT_KEY or toleration["effect"] != "NoSchedule":
            out.append(toleration)
    out.append({"key": "CriticalAddonsOnly", "operator": "Exists"})
    return out


def k3s_version(inv: Inventory) -> str:
    from hearth.deploy_data import group_defaults

    return str((inv.k3s.version if inv.k3s else None) or group_defaults().get("k3s_version", "v1.33.5+k3s1"))


def k3s_ships_runtimeclass(inv: Inventory) -> bool:
    """k3s >= v1.29 creates the ``nvidia`` RuntimeClass itself unless its `runtimes` component is disabled."""
    match = re.match(r"v?(\d+)\.(\d+)", k3s_version(inv))
    if match is None:
        return False
    disabled = "runtimes" in (getattr(inv.k3s, "disable", None) or [])
    return (int(match[1]), int(match[2])) >= K3S_RUNTIMECLASSES_SINCE and not disabled


def device_plugin(inv: Inventory) -> ConfigFile:
    s = {**_group_defaults(), **inv.settings}
    version = str(s["nvidia_device_plugin_version"])
    return ConfigFile(
        dest=DEVICE_PLUGIN,
        template="nvidia/device-plugin.yaml.j2",
        mode="0600",  # k3s's own manifests folder is root-only
        context={
            "image": str(s["nvidia_device_plugin_image"]).format(version=version),
            "version": version,
            "node_selector": gpu_labels(inv),
            "tolerations": tolerations(inv),
        },
    )


def runtime_class() -> ConfigFile:
    return ConfigFile(dest=RUNTIME_CLASS, template="nvidia/runtimeclass.yaml.j2", mode="0600")


def cluster_files(inv: Inventory) -> list[ConfigFile]:
    """Manifests the k3s server applies on its own (auto-deploy folder); none without NVIDIA hosts."""
    if not nvidia_hosts(inv) or inv.k3s is None:
        return []
    files = [device_plugin(inv)]
    if not k3s_ships_runtimeclass(inv):
        files.append(runtime_class())
    return files


def _group_defaults() -> dict[str, Any]:
    from hearth.deploy_data import group_defaults

    return group_defaults()
