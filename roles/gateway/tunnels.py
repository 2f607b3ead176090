"""gateway tunnels: one supervised SSH tunnel per ``windows.reach: ssh_tunnel`` box.

On the gateway host, as user ``hearth-tunnel`` (not root): a key pair made here
(the private half never leaves this host), a known_hosts written from the host keys
recorded on the deploying machine (``hearth hostkey accept``), the runner that names
the box when its key is refused, and ``hearth-tunnel-<host>.service`` per box
(hearth.configs.tunnel). The windows role, later in the deploy, puts this host's
public key on each box restricted to forwarding its serve ports. Units of boxes no
longer reached this way are stopped and removed. A second run changes nothing.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FindFiles
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from hearth.configs import tunnel
from hearth.inventory import load_cached
from hearth.operations import accounts, config_files, paths, services, ssh
from hearth.operations.apt import packages_installed

RUNNER_SOURCE = Path(__file__).resolve().parents[2] / "templates" / "gateway" / "hearth-tunnel-run.py"


@deploy("gateway tunnels")
def apply_tunnels() -> None:
    inv = load_cached(host.data.hearth_inventory)
    boxes = tunnel.tunnel_hosts(inv)
    wanted = {f"{tunnel.UNIT_DIR}/{tunnel.unit_name(box)}" for box in boxes}
    present = host.get_fact(FindFiles, path=tunnel.UNIT_DIR, fname="hearth-tunnel-*.service", maxdepth=1) or []
    stale = sorted(set(present) - wanted)
    removed = []
    for path in stale:
        unit_name = Path(path).name
        services.service(name=f"Stop {unit_name} (no longer reach ssh_tunnel)", service=unit_name,
                         running=False, enabled=False)
        removed.append(paths.file(name=f"Remove {unit_name}", path=path, present=False))
    if not boxes:
        systemd.daemon_reload(name="Reload systemd (tunnel units removed)", _if=any_changed(*removed))
        return

    known_hosts = tunnel.known_hosts(inv)  # refuses, naming the box, when a host key is not recorded
    packages_installed("OpenSSH client", ["openssh-client"])
    accounts.group(name=f"Group {tunnel.USER}", group=tunnel.USER, system=True)
    accounts.user(name=f"User {tunnel.USER} (system, no login)", user=tunnel.USER, group=tunnel.USER,
                  system=True, home=tunnel.HOME, shell="/usr/sbin/nologin")
    paths.directory(name="Tunnel home (its key pair)", path=tunnel.HOME, user=tunnel.USER, group=tunnel.USER,
                    mode="0700")
    key = ssh.keypair(name="Tunnel key pair (made on this host)", path=tunnel.KEY, user=tunnel.USER,
                      comment=f"{tunnel.MARKER}@{host.data.hearth_host}")
    key_mode = paths.file(name="Tunnel private key is 0600", path=tunnel.KEY, user=tunnel.USER,
                          group=tunnel.USER, mode="0600")
    paths.directory(name="Tunnel config directory", path=tunnel.ETC, mode="0755")
    known = config_files.put(name="Tunnel known_hosts (the recorded host keys)", src=StringIO(known_hosts.render()),
                             dest=known_hosts.dest, mode="0644")
    runner = config_files.put(name="Tunnel runner (names the box when its key is refused)", src=str(RUNNER_SOURCE),
                              dest=tunnel.RUNNER, mode="0755")
    units = {}
    for box in boxes:
        config = tunnel.unit(inv, box)
        units[box] = config_files.put(name=f"Unit {tunnel.unit_name(box)}", src=StringIO(config.render()),
                                      dest=config.dest, mode=config.mode)
    systemd.daemon_reload(name="Reload systemd (tunnel units changed)", _if=any_changed(*units.values(), *removed))
    for box in boxes:
        name = tunnel.unit_name(box)
        services.service(name=f"{name} enabled and running", service=name, enabled=True, running=True)
        # a unit stopped by a refused host key starts again here once the new key is recorded
        systemd.service(name=f"Restart {name} (unit, key, known_hosts or runner changed)", service=name,
                        restarted=True, _if=any_changed(units[box], key, key_mode, known, runner))


apply_tunnels()
