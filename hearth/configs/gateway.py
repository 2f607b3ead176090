"""The gateway's files: its policy (rendered from the inventory) and a hardened unit.

The policy holds no secret: client keys appear as sha256 hashes, the admin token
and cloud API keys as paths of 0600 files the role writes beside it.
``facts["resolve"]`` turns secret references into secrets (the deploy passes
:func:`hearth.inventory.resolve_secret`); without it, as in `hearth render`, a
reference that cannot be resolved here hashes to a marked placeholder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hearth.configs import ConfigFile
from hearth.gateway.config import GatewayConfig, dump_config
from hearth.gateway.from_inventory import SECRETS_DIR, gateway_config_from_inventory
from hearth.inventory import Inventory, SecretError, resolve_secret

HOME = "/opt/hearth-gateway"
SRC = f"{HOME}/src"
VENV = f"{HOME}/venv"
ETC = "/etc/hearth/gateway"
POLICY = f"{ETC}/policy.yaml"
UNIT = "/etc/systemd/system/hearth-gateway.service"
USER = "hearth-gateway"
STATE = "/var/lib/hearth-gateway"
LOGS = "/var/log/hearth/gateway"


def resolve_or_placeholder(ref: str) -> str:
    """For review output only: the secret if it resolves here, else a marked stand-in."""
    try:
        return resolve_secret(ref)
    except SecretError:
        return f"unresolved {ref}"


def policy(inv: Inventory, resolve: Callable[[str], str]) -> GatewayConfig:
    return gateway_config_from_inventory(inv, resolve=resolve, secrets_dir=SECRETS_DIR, log_dir=LOGS)


def unit_ordering(inv: Inventory) -> list[str]:
    """The gateway listens on the overlay address, so it starts after the overlay."""
    if inv.overlay.kind == "wireguard":
        return [f"wg-quick@{inv.overlay.interface}.service"]
    return []


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if inv.gateway is None or inv.gateway.host != name:
        return []
    resolve = (facts or {}).get("resolve", resolve_or_placeholder)
    config = policy(inv, resolve)
    # The listen addresses go on the command line too: a reload cannot move a
    # listening socket, so changing them changes the unit, which restarts it.
    return [
        ConfigFile(dest=POLICY, template="gateway/policy.yaml.j2", mode="0640", group=USER,
                   context={"inventory": inv.name, "policy": dump_config(config)}),
        ConfigFile(dest=UNIT, template="gateway/hearth-gateway.service.j2",
                   context={"user": USER, "venv": VENV, "src": SRC, "policy": POLICY, "listen": config.listen,
                            "state_directory": STATE.removeprefix("/var/lib/"),
                            "logs_directory": LOGS.removeprefix("/var/log/"), "after": unit_ordering(inv)}),
    ]
