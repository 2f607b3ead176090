"""k3s agents: the token from the first server, then join."""

from __future__ import annotations

from pyinfra.api.operation import OperationMeta

from hearth.configs import k3s as configs
from hearth.inventory import Inventory
from hearth.operations import k3s, services


def apply(inv: Inventory, name: str) -> tuple[OperationMeta, OperationMeta]:
    assert inv.k3s is not None
    first = inv.k3s.server
    token = k3s.join_token(name=f"Join token from {first} (0600, never printed)", dest=configs.TOKEN_FILE,
                           first_server=first, token_ref=inv.k3s.token)
    started = services.service(name=f"k3s agent joins {first}", service="k3s-agent", running=True, enabled=True)
    return token, started
