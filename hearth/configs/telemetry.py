"""Node telemetry on every Linux host: Debian's/Ubuntu's prometheus-node-exporter on the
overlay address only, and on NVIDIA hosts a timer writing per-GPU metrics into the node
exporter's textfile collector (``hearth.telemetry.gpu_metrics``).

Python decides every value here; ``templates/telemetry/`` lays them out.
"""

from __future__ import annotations

import inspect
from typing import Any

from hearth.configs import ConfigFile
from hearth.configs.base import settings
from hearth.inventory import Inventory
from hearth.telemetry import gpu_metrics

PACKAGE = "prometheus-node-exporter"
SERVICE = "prometheus-node-exporter.service"
DEFAULTS = "/etc/default/prometheus-node-exporter"
DROPIN_DIR = "/etc/systemd/system/prometheus-node-exporter.service.d"
DROPIN = f"{DROPIN_DIR}/hearth.conf"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's default for --collector.textfile.directory
GPU_SCRIPT = "/usr/local/libexec/hearth-gpu-metrics"
GPU_SERVICE = "/etc/systemd/system/hearth-gpu-metrics.service"
GPU_TIMER = "/etc/systemd/system/hearth-gpu-metrics.timer"
# Units whose state the node exporter's systemd collector reports (no backslash: the
# Debian unit passes $ARGS through systemd's word splitting).
SYSTEMD_UNITS = "(ollama|vllm-.+|hearth-.+|wg-quick@.+|k3s|k3s-agent|prometheus.*|mosquitto)[.]service"


def applies(inv: Inventory, name: str) -> bool:
    return inv.hosts[name].os == "linux"


def nvidia_gpus(inv: Inventory, name: str) -> list[int]:
    """Indexes of the host's NVIDIA GPUs (nvidia-smi numbers them in the same order)."""
    gpus = [g for g in inv.hosts[name].gpus if g.vendor == "nvidia"]
    return list(range(len(gpus)))


def unified_indexes(inv: Inventory, name: str) -> list[int]:
    gpus = [g for g in inv.hosts[name].gpus if g.vendor == "nvidia"]
    return [i for i, g in enumerate(gpus) if g.unified_memory]


def listen_address(inv: Inventory, name: str) -> str:
    """``<overlay IP>:<node_exporter_port>``: never the LAN, never every address."""
    return f"{inv.hosts[name].overlay_ip}:{int(settings(inv, name)['node_exporter_port'])}"


def exporter_args(inv: Inventory, name: str) -> list[str]:
    return [
        f"--web.listen-address={listen_address(inv, name)}",
        f"--collector.textfile.directory={TEXTFILE_DIR}",
        "--collector.systemd",
        f"--collector.systemd.unit-include={SYSTEMD_UNITS}",
    ]


def overlay_unit(inv: Inventory) -> str | None:
    """The unit that brings the overlay address up (hearth's WireGuard), if hearth runs it."""
    return f"wg-quick@{inv.overlay.interface}.service" if inv.overlay.kind == "wireguard" else None


def gpu_command(inv: Inventory, name: str) -> list[str]:
    conf = settings(inv, name)
    command = [GPU_SCRIPT, "--host", name, "--nvidia-smi", str(conf["nvidia_smi"]), "--dir", TEXTFILE_DIR]
    unified = unified_indexes(inv, name)
    if unified:
        command += ["--unified", ",".join(str(i) for i in unified)]
    return command


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not applies(inv, name):
        return []
    files = [
        ConfigFile(dest=DEFAULTS, template="telemetry/prometheus-node-exporter.default.j2",
                   context={"args": " ".join(exporter_args(inv, name))}),
        ConfigFile(dest=DROPIN, template="telemetry/prometheus-node-exporter.dropin.conf.j2",
                   context={"after": overlay_unit(inv)}),
    ]
    if not nvidia_gpus(inv, name):
        return files
    interval = int(settings(inv, name)["gpu_metrics_interval_s"])
    return [
        *files,
        ConfigFile(dest=GPU_SCRIPT, template="telemetry/hearth-gpu-metrics.py.j2", mode="0755",
                   context={"source": inspect.getsource(gpu_metrics)}),
        ConfigFile(dest=GPU_SERVICE, template="telemetry/hearth-gpu-metrics.service.j2",
                   context={"command": " ".join(gpu_command(inv, name)), "textfile_dir": TEXTFILE_DIR}),
        ConfigFile(dest=GPU_TIMER, template="telemetry/hearth-gpu-metrics.timer.j2", context={"interval": interval}),
    ]
