"""Role sleep: Linux hosts that sleep suspend again after the inventory's idle minutes.

`hearth-idle.timer` runs `hearth-idle.service` (a oneshot, standard-library Python)
every few seconds to a minute; each run decides from the engines' state, the serve
ports' connections, SSH sessions and sleep inhibitors whether the host is idle, writes
the decision and why to the journal, and runs `systemctl suspend` once the host has
been idle for `sleep.idle_minutes` (hearth/configs/sleep.py). The NIC's Wake-on-LAN
flag is roles/wol's.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from hearth.configs import sleep as configs
from hearth.inventory import load_cached
from hearth.operations import config_files, paths, services


@deploy("sleep")
def apply_sleep() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    wanted = {f.dest: f for f in configs.host_files(inv, name)}
    if not wanted:
        return
    paths.directory(name="Config directory", path=str(Path(configs.CONFIG).parent), mode="0755")
    paths.directory(name="Script directory", path=str(Path(configs.SCRIPT).parent), mode="0755")
    puts = {dest: config_files.put(name=f"{Path(dest).name}", src=StringIO(f.render()), dest=dest, mode=f.mode)
            for dest, f in wanted.items()}
    units = [puts[configs.SERVICE], puts[configs.TIMER]]
    systemd.daemon_reload(name="Reload systemd (idle units changed)", _if=any_changed(*units))
    services.service(name="Idle check timer enabled and running", service="hearth-idle.timer",
                     running=True, enabled=True)
    systemd.service(name="Restart the idle check timer (its interval changed)", service="hearth-idle.timer",
                    restarted=True, _if=any_changed(puts[configs.TIMER]))


apply_sleep()
