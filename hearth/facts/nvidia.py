"""Facts about the NVIDIA driver's kernel side and k3s's use of the container runtime."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra.api import FactBase


@dataclass(frozen=True)
class KernelState:
    container: bool
    nouveau_loaded: bool
    loaded: str  # /sys/module/nvidia/version: the running module ("" = none)
    on_disk: str  # modinfo: the module the next boot loads ("" = none built)

    def reboot_reason(self) -> str | None:
        """Why the installed driver cannot be used before a reboot; None when it can (or in a container)."""
        if self.container:
            return None  # the kernel and its modules belong to the machine hosting the container
        if self.nouveau_loaded:
            return "nouveau is loaded; it is blacklisted from the next boot"
        if self.on_disk and self.loaded and self.loaded != self.on_disk:
            return f"nvidia module {self.loaded} is loaded, {self.on_disk} is installed"
        return None


def parse_kernel(lines: list[str]) -> KernelState:
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    virt = values.get("virt", "none").strip()
    return KernelState(
        container=virt not in ("", "none"),
        nouveau_loaded=values.get("nouveau", "0").strip() == "1",
        loaded=values.get("loaded", "").strip(),
        on_disk=values.get("ondisk", "").strip(),
    )


class NvidiaKernel(FactBase[KernelState]):
    """
    The NVIDIA kernel module as loaded and as installed, nouveau, container or not.

    .. code:: python

        host.get_fact(NvidiaKernel).reboot_reason()  # None, or why a reboot is needed
    """

    def command(self) -> str:
        return (
            "echo virt=$(systemd-detect-virt --container 2>/dev/null || true); "
            "echo nouveau=$(test -d /sys/module/nouveau && echo 1 || echo 0); "
            "echo loaded=$(cat /sys/module/nvidia/version 2>/dev/null); "
            "echo ondisk=$(modinfo -F version nvidia 2>/dev/null)"
        )

    def process(self, output: list[str]) -> KernelState:
        return parse_kernel(output)


@dataclass(frozen=True)
class RuntimeState:
    unit: str | None  # "k3s" or "k3s-agent" when active
    active_since: int  # epoch seconds the unit entered active
    runtime_changed: int | None  # ctime of nvidia-container-runtime (install time); None = absent
    config_has_nvidia: bool


def parse_runtime(lines: list[str]) -> RuntimeState:
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    unit = values.get("unit", "").strip() or None
    since = values.get("since", "").strip()
    changed = values.get("runtime", "").strip()
    return RuntimeState(
        unit=unit,
        active_since=int(since) if since.isdigit() else 0,
        runtime_changed=int(changed) if changed.isdigit() else None,
        config_has_nvidia=values.get("nvidia", "0").strip() == "1",
    )


class K3sRuntime(FactBase[RuntimeState]):
    """
    Whether k3s (server or agent) runs here, since when, when the NVIDIA runtime was
    installed (its ctime: dpkg keeps the packaged mtime) and whether k3s's generated
    containerd config has the ``nvidia`` runtime.

    .. code:: python

        host.get_fact(K3sRuntime, config="/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
                      runtime="/usr/bin/nvidia-container-runtime")
    """

    # containerd 1.x: runtimes."nvidia"]  containerd 2.x (k3s >= 1.31): runtimes.'nvidia']
    PATTERN = r"runtimes\.['\"]?nvidia['\"]?\]"

    def command(self, config: str, runtime: str) -> str:
        cfg, rt = shlex.quote(config), shlex.quote(runtime)
        return (
            "unit=; for u in k3s k3s-agent; do systemctl is-active --quiet $u && unit=$u && break; done; "
            "echo unit=$unit; "
            "[ -n \"$unit\" ] && echo since=$(date -d \"$(systemctl show -p ActiveEnterTimestamp --value $unit)\""
            " +%s 2>/dev/null); "
            f"echo runtime=$(stat -c %Z {rt} 2>/dev/null); "
            f"grep -Eq {shlex.quote(self.PATTERN)} {cfg} 2>/dev/null && echo nvidia=1 || echo nvidia=0"
        )

    def process(self, output: list[str]) -> RuntimeState:
        return parse_runtime(output)
