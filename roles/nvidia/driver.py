"""NVIDIA driver from the distribution (see main.py): packages, nouveau, persistence, power limits."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, server, systemd
from pyinfra.operations.util import any_changed

from hearth.configs import nvidia as configs
from hearth.facts.system import Container, PathExists
from hearth.inventory import load_cached
from hearth.operations import apt as apt_ops
from hearth.operations import config_files, paths, services
from hearth.operations import nvidia as nvidia_ops
from hearth.operations.apt import installed_at_start


@deploy("nvidia")
def apply_driver() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    container = host.get_fact(Container)
    facts = {"distro": host.get_fact(LinuxDistribution), "container": container}
    by_dest = {cf.dest: cf for cf in configs.host_files(inv, name, facts)}
    device = host.get_fact(PathExists, path="/dev/nvidiactl")

    if host.data.nvidia_manage_driver:
        sources = []
        for dest in (configs.NONFREE_SOURCES, configs.DRIVER_PIN):
            if dest in by_dest:
                cf = by_dest[dest]
                label = "Debian non-free sources" if dest == configs.NONFREE_SOURCES else "Driver branch pin"
                sources.append(config_files.put(name=f"{label} ({configs.branch(inv, name)})",
                                                src=StringIO(cf.render()), dest=cf.dest, mode=cf.mode))  # fmt: skip
        blacklist = by_dest[configs.NOUVEAU_BLACKLIST]
        nouveau = config_files.put(name="nouveau blacklisted", src=StringIO(blacklist.render()),
                                   dest=blacklist.dest, mode=blacklist.mode)  # fmt: skip
        initramfs = host.get_fact(PathExists, path="/usr/sbin/update-initramfs")
        server.shell(name="Initramfs without nouveau", commands=["update-initramfs -u"],
                     _if=lambda: nouveau.did_change() and initramfs and not container)  # fmt: skip

        packages = configs.driver_packages(inv, name, facts) + configs.kernel_headers(inv, name, facts)
        installed = installed_at_start()
        missing = [p for p in packages if p not in installed]
        apt.update(name="Refresh apt lists (driver sources changed or packages missing)",
                   _if=lambda: bool(missing) or any(op.did_change() for op in sources))  # fmt: skip
        apt_ops.installed(name=f"NVIDIA driver {configs.branch(inv, name)} ({', '.join(packages)})",
                          packages=packages, no_recommends=True)  # fmt: skip
        nvidia_ops.reboot_for_driver(name="Reboot for the driver (only if the inventory allows it)",
                                     allow=inv.hosts[name].allow_reboot, _serial=True)  # fmt: skip

    # The daemon comes with the driver packages (or with an OS that brings the driver).
    persistenced = (configs.manages_persistenced(inv, name, facts)
                    or host.get_fact(PathExists, path=configs.PERSISTENCED_UNIT))
    if host.data.nvidia_persistenced and persistenced:
        # Without /dev/nvidiactl (no module loaded yet, or a container) the daemon cannot run:
        # its unit is conditioned on the device, so it is skipped there instead of failing.
        dropin_file = by_dest[configs.PERSISTENCED_DROPIN]
        dropin = config_files.put(name="nvidia-persistenced only with the driver's device",
                                  src=StringIO(dropin_file.render()), dest=dropin_file.dest, mode=dropin_file.mode)
        systemd.daemon_reload(name="Reload systemd (persistenced drop-in changed)", _if=dropin.did_change)
        server.shell(name="Forget a start that failed before the drop-in",
                     commands=["systemctl reset-failed nvidia-persistenced.service || true"],
                     _if=dropin.did_change)  # fmt: skip
        services.service(name="Persistence mode (nvidia-persistenced)" + ("" if device else ", starts with the driver"),
                         service="nvidia-persistenced", enabled=True, running=True if device else None)  # fmt: skip

    unit_file = by_dest.get(configs.POWER_LIMIT_UNIT)
    if unit_file is not None:
        unit = config_files.put(name="GPU power limits at boot", src=StringIO(unit_file.render()),
                                dest=unit_file.dest, mode=unit_file.mode)  # fmt: skip
        systemd.daemon_reload(name="Reload systemd (power limit unit changed)", _if=unit.did_change)
        services.service(name="GPU power limits enabled", service="hearth-nvidia-power-limit", enabled=True)
        systemd.service(name="Apply GPU power limits (unit changed)", service="hearth-nvidia-power-limit",
                        restarted=True, _if=any_changed(unit) if device else lambda: False)  # fmt: skip
    else:
        paths.file(name="No GPU power limits", path=configs.POWER_LIMIT_UNIT, present=False)


apply_driver()
