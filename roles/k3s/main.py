"""Role k3s: servers, then agents, on the overlay (groups `k3s_servers`, `k3s_agents`).

One step per concern, in this order across the whole cluster (pyinfra runs each
operation on every host before the next):

1. install  -- the pinned release for the host's architecture, sha256-checked
               before it replaces anything (download, mirror or air-gap folder);
2. config   -- /etc/rancher/k3s/config.yaml (0600) and the unit (hearth.configs.k3s);
3. server   -- the first server starts and makes the token; further servers get the
               token from it and join one at a time;
4. agent    -- agents get the token from the first server and join;
5. rollout  -- a changed setting restarts exactly the nodes whose files changed:
               servers, then agents, one node at a time, each Ready before the next;
               then every node is checked Ready and carries the inventory's labels.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import k3s as configs
from hearth.inventory import load_cached


def concern(name: str) -> ModuleType:
    """roles/k3s/<name>.py (roles/ is not a package: load it by path, once)."""
    key = f"hearth_role_k3s_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


@deploy("k3s")
def apply_k3s() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    if inv.k3s is None:
        return
    settings = configs.settings(inv, name)
    binary = concern("install").apply(inv, name, settings)
    written = concern("config").apply(inv, name, settings)
    if configs.mode(inv, name) == "server":
        token, started = concern("server").apply(inv, name)
    else:
        token, started = concern("agent").apply(inv, name)
    concern("rollout").apply(inv, name, settings, [binary, *written, token], started)


apply_k3s()
