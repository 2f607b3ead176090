"""What the k3s checks and `hearth bench lab` change and wait for in a lab (issue 15's numbers).

- :func:`deploy_without_k3s`: deploy.py with its k3s role taken out, everything else as
  it is, to see what k3s adds to a no-op re-run (the same lab, the same minute);
- :func:`with_server_setting` / :func:`with_every_node_setting`: inventory data with a
  k3s setting changed on the servers only, or on every node, so a deploy restarts
  exactly those nodes (servers first, one node at a time);
- :func:`wait_every_node_ready`: poll the first server's node list (the same read as
  `hearth status`) until every k3s host of the inventory is Ready again.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.inventory import Inventory
from hearth.lab.cycle import REPO
from hearth.lab.sh import LabError
from hearth.status_k3s import read_nodes

# deploy.py's k3s block: from its comment to its include (tests/unit/test_lab_k3s_variants.py)
K3S_BLOCK_START = "# k3s on servers and agents"
K3S_INCLUDE = 'local.include("roles/k3s/main.py")\n'

# One setting only servers read, one every node reads; neither is set by a lab inventory.
SERVER_SETTING = ("server_config", "kube-apiserver-arg", ["event-ttl=2h"])
NODE_SETTING = ("config", "kubelet-arg", ["max-pods=111"])


def deploy_without_k3s(dest: Path, deploy_py: Path = REPO / "deploy.py") -> Path:
    """Write ``deploy_py`` without its k3s role to ``dest`` and return ``dest``.

    Example: ``cycle.deploy(inventory_py, deploy_without_k3s(tmp / "deploy.py"))``.
    """
    text = deploy_py.read_text()
    try:
        start = text.index(K3S_BLOCK_START)
        end = text.index(K3S_INCLUDE, start) + len(K3S_INCLUDE)
    except ValueError:
        raise LabError(f"{deploy_py}: no k3s block ({K3S_BLOCK_START!r} ... {K3S_INCLUDE.strip()})") from None
    out = text[:start] + text[end:]
    if "roles/k3s/" in out:
        raise LabError(f"{deploy_py}: roles/k3s is included more than once; cannot take it out")
    dest.write_text(out)
    return dest


def _with(data: dict[str, Any], *settings: tuple[str, str, list[str]]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    if not isinstance(out.get("k3s"), dict):
        raise LabError("the inventory has no k3s section")
    for section, key, value in settings:
        out["k3s"].setdefault(section, {})[key] = value
    return out


def with_server_setting(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of inventory ``data`` with a setting changed that only k3s servers read."""
    return _with(data, SERVER_SETTING)


def with_every_node_setting(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of inventory ``data`` with a setting changed on every k3s node (and the servers' one)."""
    return _with(data, SERVER_SETTING, NODE_SETTING)


def wait_every_node_ready(
    inv: Inventory, since: float, timeout_s: float = 300.0,
    read: Callable[[Inventory], dict[str, Any]] = read_nodes,
) -> float:
    """Seconds from ``since`` (``time.monotonic()``) until every k3s host is Ready.

    ``read`` is the node list on the inventory's first server over SSH, as `hearth
    status` reads it; raises :class:`LabError` with the last states seen after
    ``timeout_s``. Example: ``wait_every_node_ready(inv, time.monotonic())``.
    """
    while True:
        seen = read(inv)
        states = seen["nodes"]
        if states and all(state == "Ready" for state in states.values()):
            return time.monotonic() - since
        if time.monotonic() - since > timeout_s:
            raise LabError(f"k3s nodes not all Ready {timeout_s:.0f} s after the change: "
                           f"{states or seen['error']}")  # fmt: skip
        time.sleep(0.5)
