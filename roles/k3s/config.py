"""k3s config: /etc/rancher/k3s/config.yaml (0600, no secret in it) and the systemd unit."""

from __future__ import annotations

from io import StringIO
from typing import Any

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import systemd

from hearth.configs import k3s as configs
from hearth.inventory import Inventory
from hearth.operations import config_files


def apply(inv: Inventory, name: str, settings: dict[str, Any]) -> list[OperationMeta]:
    cfg = configs.config_file(inv, name)
    config = config_files.put(name="config.yaml: overlay node-ip, flannel on the overlay, labels, taints (0600)",
                              src=StringIO(cfg.render()), dest=cfg.dest, mode=cfg.mode, user="root", group="root")
    unit_file = configs.unit_file(inv, name, int(settings["k3s_start_timeout_s"]))
    unit = config_files.put(name=f"{configs.service(inv, name)}.service (Type=notify, bounded start)",
                            src=StringIO(unit_file.render()), dest=unit_file.dest, mode=unit_file.mode)
    systemd.daemon_reload(name="Reload systemd (k3s unit changed)", _if=unit.did_change)
    return [config, unit]
