"""k3s servers: the first one initialises the cluster; further ones join it, one at a time."""

from __future__ import annotations

from pyinfra.api.operation import OperationMeta

from hearth.configs import k3s as configs
from hearth.inventory import Inventory
from hearth.operations import k3s, services


def apply(inv: Inventory, name: str) -> tuple[OperationMeta | None, OperationMeta]:
    assert inv.k3s is not None
    first = inv.k3s.server
    ref = inv.k3s.token
    if configs.is_first_server(inv, name):
        token = None
        if ref is not None:
            token = k3s.join_token(name="Cluster token from k3s.token (0600)", dest=configs.TOKEN_FILE,
                                   first_server=first, token_ref=ref)
        started = services.service(name="k3s server (first: initialises the cluster) enabled and running",
                                   service="k3s", running=True, enabled=True)
        return token, started
    token = k3s.join_token(name=f"Join token from {first} (0600, never printed)", dest=configs.TOKEN_FILE,
                           first_server=first, token_ref=ref)
    started = services.service(name=f"k3s server joins {first} (one at a time)", service="k3s",
                               running=True, enabled=True, _serial=True)
    return token, started
