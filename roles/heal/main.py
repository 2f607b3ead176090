"""Role heal: the healing timer on GPU hosts (issue 23 item 5, seed 002's one-minute timer).

`hearth-heal.timer` re-probes each local serve in the host's GPU start order and
restarts one that does not answer, within a budget (per hour, with backoff); on a
host serving a terminal route it only pages (a critical journal line and a metric).
Every action goes to the journal and to `hearth_heal.prom` in the node exporter's
textfile collector (roles/telemetry).
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from hearth.configs import heal as configs
from hearth.inventory import load_cached
from hearth.operations import config_files, paths, services


@deploy("heal")
def apply_heal() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    wanted = configs.host_files(inv, name)
    if not wanted:
        for path in (configs.TIMER, configs.SERVICE, configs.SCRIPT, configs.CONFIG):
            paths.file(name=f"No {Path(path).name} (no GPU serve on this host)", path=path, present=False)
        return
    paths.directory(name="Config directory", path=str(Path(configs.CONFIG).parent), mode="0755")
    puts = {
        f.dest: config_files.put(name=Path(f.dest).name, src=StringIO(f.render()), dest=f.dest, mode=f.mode)
        for f in wanted
    }
    systemd.daemon_reload(name="Reload systemd (healing units changed)",
                          _if=any_changed(puts[configs.SERVICE], puts[configs.TIMER]))
    services.service(name="Healing timer enabled and running", service="hearth-heal.timer", running=True,
                     enabled=True)
    systemd.service(name="Restart healing timer (its period changed)", service="hearth-heal.timer",
                    restarted=True, _if=puts[configs.TIMER].did_change)


apply_heal()
