"""Role telemetry: every Linux node reports its health (issue 23 item 1).

Debian's/Ubuntu's `prometheus-node-exporter` listens on the host's overlay address
only (the firewall opens `node_exporter_port` on the overlay). Its arguments and the
systemd drop-in are in place before the package is installed, so even its first start
binds the overlay address (pyinfra's apt keeps an existing conffile: --force-confold).
On NVIDIA hosts `hearth-gpu-metrics.timer` writes per-GPU metrics from
`nvidia-smi --query-gpu` into the exporter's textfile collector.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from hearth.configs import telemetry as configs
from hearth.inventory import load_cached
from hearth.operations import config_files, paths, services
from hearth.operations.apt import packages_installed


@deploy("telemetry")
def apply_telemetry() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    wanted = {f.dest: f for f in configs.host_files(inv, name)}
    if not wanted:
        return

    defaults, dropin = wanted[configs.DEFAULTS], wanted[configs.DROPIN]
    paths.directory(name="Node exporter drop-in folder", path=configs.DROPIN_DIR, mode="0755")
    exporter = [
        config_files.put(name=f"Node exporter arguments (listen on {configs.listen_address(inv, name)} only)",
                         src=StringIO(defaults.render()), dest=defaults.dest, mode=defaults.mode),
        config_files.put(name="Node exporter after the overlay (drop-in)", src=StringIO(dropin.render()),
                         dest=dropin.dest, mode=dropin.mode),
    ]
    packages_installed("Node exporter (Debian's prometheus-node-exporter)", [configs.PACKAGE], no_recommends=True)
    paths.directory(name="Textfile collector folder", path=configs.TEXTFILE_DIR, mode="0755")
    systemd.daemon_reload(name="Reload systemd (node exporter drop-in changed)", _if=exporter[1].did_change)
    services.service(name="Node exporter enabled and running", service=configs.SERVICE, running=True, enabled=True)
    systemd.service(name="Restart node exporter (arguments changed)", service=configs.SERVICE, restarted=True,
                    _if=any_changed(*exporter))

    if configs.GPU_TIMER not in wanted:
        for path in (configs.GPU_TIMER, configs.GPU_SERVICE, configs.GPU_SCRIPT):
            paths.file(name=f"No {Path(path).name} (no NVIDIA GPU in the inventory)", path=path, present=False)
        return
    gpu = [
        config_files.put(name=Path(dest).name, src=StringIO(wanted[dest].render()), dest=dest, mode=wanted[dest].mode)
        for dest in (configs.GPU_SCRIPT, configs.GPU_SERVICE, configs.GPU_TIMER)
    ]
    systemd.daemon_reload(name="Reload systemd (GPU metrics units changed)", _if=any_changed(gpu[1], gpu[2]))
    services.service(name="GPU metrics timer enabled and running", service="hearth-gpu-metrics.timer",
                     running=True, enabled=True)
    systemd.service(name="Restart GPU metrics timer (its period changed)", service="hearth-gpu-metrics.timer",
                    restarted=True, _if=gpu[2].did_change)


apply_telemetry()
