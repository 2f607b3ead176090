"""k3s rollout: restart exactly the nodes whose files changed, servers first, one at a time.

A node restarts when its binary, config.yaml, unit or token changed -- and it was
already running (a node this run started needs no restart). `_serial` makes pyinfra
run the restart on one host after another; each waits until the first server
reports the node Ready with a fresh heartbeat, and a node that does not come back
stops the rollout. Servers restart in an earlier operation than agents.
"""

from __future__ import annotations

from typing import Any

from pyinfra.api.operation import OperationMeta

from hearth.configs import k3s as configs
from hearth.inventory import Inventory
from hearth.operations import k3s


def apply(inv: Inventory, name: str, settings: dict[str, Any], changed: list[OperationMeta | None],
          started: OperationMeta) -> None:
    assert inv.k3s is not None
    ops = [op for op in changed if op is not None]

    def needs_restart() -> bool:
        return any(op.did_change() for op in ops) and not started.did_change()

    service = configs.service(inv, name)
    timeout = float(settings["k3s_ready_timeout_s"])
    server = inv.k3s.server
    what = "settings changed: one node at a time, each Ready before the next"
    if configs.mode(inv, name) == "server":
        k3s.restarted_ready(name=f"Restart k3s server ({what})", service=service, node=name, server=server,
                            timeout_s=timeout, _serial=True, _if=needs_restart)
    else:
        k3s.restarted_ready(name=f"Restart k3s agent ({what})", service=service, node=name, server=server,
                            timeout_s=timeout, _serial=True, _if=needs_restart)
    k3s.node_ready(name=f"Node {name} Ready (bounded wait) with the inventory's labels and taints", node=name,
                   server=server, labels=configs.node_labels(inv, name), taints=configs.node_taints(inv, name),
                   timeout_s=timeout)
