"""Model names the operator chooses (``model_aliases``): ``gpt-4o`` -> ``hearth/code``.

An alias points at a route alias (``<alias_prefix>/<route>``), ``<alias_prefix>/auto``
or a served model name; clients keep the alias when the model behind it changes
(a deploy or a ``SIGHUP`` reload). An alias may not shadow a name the gateway
already answers to, and may not point at another alias or at a cloud model.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import GatewayConfig

_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


def alias_targets(prefix: str, routes: list[str], served: set[str]) -> set[str]:
    """Every name an alias may point at."""
    p = prefix.rstrip("/")
    return {f"{p}/auto", *(f"{p}/{r}" for r in routes), *served}


def alias_problems(aliases: dict[str, str], prefix: str, routes: list[str],
                   served: set[str]) -> list[tuple[str, str]]:
    """(alias, what is wrong) for each bad alias; shared by the gateway and inventory."""
    out: list[tuple[str, str]] = []
    p = prefix.rstrip("/")
    targets = alias_targets(prefix, routes, served)
    for alias, target in aliases.items():
        if not _ALIAS_RE.match(alias) or len(alias) > 200:
            out.append((alias, "an alias uses letters, digits and ._:/@+- (at most 200)"))
        elif alias.startswith(f"{p}/") or alias == p:
            out.append((alias, f"shadows the route aliases ({p}/<route>, {p}/auto)"))
        elif alias.startswith("cloud/"):
            out.append((alias, "shadows the cloud models (cloud/<provider>/<alias>)"))
        elif alias in served:
            out.append((alias, "shadows a served model's own name"))
        elif target in aliases:
            out.append((alias, f"points at another alias {target!r} (point at its target)"))
        elif target not in targets:
            out.append((alias, f"unknown target {target!r} (want {p}/<route>, {p}/auto or "
                               "a served model name)"))
    return out


def check_aliases(cfg: GatewayConfig) -> list[str]:
    """``model_aliases.<alias>: reason`` errors for a gateway policy."""
    served = {u.model for u in cfg.upstreams.values()}
    return [f"model_aliases.{a}: {why}" for a, why in
            alias_problems(cfg.model_aliases, cfg.routing.alias_prefix, list(cfg.routes),
                           served)]
