"""Role base: the node baseline every Linux host gets.

Hostname, time sync (chrony), base packages, the automation user with key-only
SSH and a validated sudoers drop-in, sshd hardened by a validated drop-in, the
sysctls the cluster needs, optional unattended security updates. Files come from
hearth.configs.base (what `hearth render` shows); this file only puts them.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import files, server

from hearth import systems
from hearth.configs import base as configs
from hearth.facts.system import Container, PathExists, PythonVersion
from hearth.inventory import load_cached
from hearth.operations import accounts, checks, config_files, services, ssh
from hearth.operations.apt import packages_installed
from hearth.operations.files import validated_put


def authorized_key(key: str | None) -> list[str]:
    """The public half of the inventory's ssh.key (``<key>.pub``), read locally."""
    if not key:
        return []
    pub = Path(f"{Path(key).expanduser()}.pub")
    if not pub.is_file():
        raise FileNotFoundError(f"ssh.key is {key} but its public half {pub} does not exist")
    return [pub.read_text().strip()]


@deploy("base")
def apply_base() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    container = host.get_fact(Container)
    facts = {
        "distro": host.get_fact(LinuxDistribution),
        "bridge_nf": host.get_fact(PathExists, path="/proc/sys/net/bridge"),
        "container": container,
    }
    by_dest = {cf.dest: cf for cf in configs.host_files(inv, name, facts)}

    if "gateway" in host.groups:
        # The gateway's virtualenv is built from the system python3 by the gateway role.
        python = host.get_fact(PythonVersion)
        checks.requirement(name="python3 >= 3.11 for the gateway (checked before anything changes)",
                           problem=systems.python_problem(python))

    server.hostname(name="Hostname is the inventory name", hostname=name)

    packages = list(host.data.base_packages)
    if host.data.unattended_upgrades:
        packages.append("unattended-upgrades")
    packages_installed("Base packages", packages)

    files.link(name=f"Timezone {host.data.timezone}", path="/etc/localtime",
               target=f"/usr/share/zoneinfo/{host.data.timezone}")
    # Inside a container the clock belongs to the machine hosting it: chrony is
    # enabled (it takes over if this ever runs on a real machine) but not started.
    services.service(name="Time sync (chrony)" + (" enabled, host owns the clock" if container else ""),
                     service="chrony", enabled=True, running=None if container else True)

    user = inv.hosts[name].ssh_user or inv.ssh.user
    if user != "root":
        accounts.user(name=f"Automation user {user}", user=user, home=f"/home/{user}", shell="/bin/bash")
        if keys := authorized_key(inv.ssh.key):
            server.user_authorized_keys(name=f"{user}'s authorized key", user=user, public_keys=keys,
                                        authorized_key_directory=f"/home/{user}/.ssh")
        sudoers = by_dest[configs.SUDOERS]
        validated_put(name="Sudoers drop-in (visudo -cf)", content=sudoers.render(), dest=sudoers.dest,
                      validate="visudo -cf {path}", mode=sudoers.mode)
    elif inv.ssh.key:
        server.user_authorized_keys(name="root's authorized key", user="root",
                                    public_keys=authorized_key(inv.ssh.key))

    sshd = by_dest[configs.SSHD_DROPIN]
    ssh.dropin("sshd hardening drop-in", content=sshd.render(), dest=sshd.dest, mode=sshd.mode)

    if configs.loads_bridge_module(inv, name, facts):
        modules = by_dest[configs.K3S_MODULES]
        config_files.put(name=f"{configs.BRIDGE_MODULE} at boot (k3s node)", src=StringIO(modules.render()),
                         dest=modules.dest, mode=modules.mode)
        # Only when its sysctls are missing: a kernel with it built in lists no module, so
        # modprobe would run (and count as a change) on every deploy.
        if not facts["bridge_nf"]:
            server.modprobe(name=f"{configs.BRIDGE_MODULE} loaded now (its sysctls follow)",
                            module=configs.BRIDGE_MODULE)

    sysctl = by_dest[configs.SYSCTL]
    config_files.put(name="Cluster sysctls (persisted)", src=StringIO(sysctl.render()), dest=sysctl.dest,
                     mode=sysctl.mode)
    for key, value in configs.sysctls(configs.bridge_sysctls(inv, name, facts)).items():
        server.sysctl(name=f"sysctl {key}", key=key, value=value)

    if host.data.unattended_upgrades:
        for cf in configs.unattended(facts):
            config_files.put(name=f"Unattended upgrades: {Path(cf.dest).name}", src=StringIO(cf.render()), dest=cf.dest,
                             mode=cf.mode)


apply_base()
