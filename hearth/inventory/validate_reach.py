"""Checks for how clients reach the gateway: model aliases, timeouts, LAN exposure.

Each check yields ``(key path, message)``; :func:`hearth.inventory.validate.cross_checks`
turns them into problems the loader prefixes with file and line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from hearth.gateway.aliases import alias_problems
from hearth.inventory.model import Inventory


def check_model_aliases(inv: Inventory) -> Iterator[tuple[str, str]]:
    """Aliases point at a route alias or a served name, and shadow neither."""
    if not inv.model_aliases:
        return
    prefix = inv.routing.alias_prefix if inv.routing else "hearth"
    routes = list(inv.route_upstreams())
    served = {s.name for _h, s in inv.serves()}
    for alias, why in alias_problems(inv.model_aliases, prefix, routes, served):
        yield f"model_aliases.{alias}", why


def check_timeouts(inv: Inventory) -> Iterator[tuple[str, str]]:
    """connect <= first byte <= total among the values the inventory sets (gateway,
    host and serve levels merged; a default left alone is never the reason)."""
    base = inv.gateway.timeouts.set_values() if inv.gateway is not None else {}
    base.pop("probe_s", None)
    yield from _order("gateway.timeouts", base)
    for hname, host in inv.hosts.items():
        for i, s in enumerate(host.serves):
            own = {**host.timeouts.set_values(), **s.timeouts.set_values()}
            own.pop("probe_s", None)
            if own:
                yield from _order(f"hosts.{hname}.serves[{i}].timeouts", {**base, **own})


def _order(where: str, t: dict[str, float]) -> Iterator[tuple[str, str]]:
    pairs = (("connect_s", "first_byte_s"), ("first_byte_s", "total_s"),
             ("connect_s", "total_s"))
    for short, long in pairs:
        if short in t and long in t and t[short] > t[long]:
            yield (f"{where}.{short}", f"{t[short]:g}s is longer than {long} ({t[long]:g}s, "
                                       "gateway, host and serve levels merged)")
            return


def check_lan_exposure(inv: Inventory) -> Iterator[tuple[str, str]]:
    """LAN exposure is opt-in, scoped, keyed, and never carries the admin API."""
    if inv.gateway is None:
        return
    lan = inv.gateway.lan
    if lan.admin_api:
        yield ("gateway.lan.admin_api", "the admin API is never exposed on the LAN (it stays "
                                        "on loopback and the overlay)")
    if not lan.listen:
        return
    if not inv.clients:
        yield ("gateway.lan.listen", "LAN exposure needs client keys (clients.*): every "
                                     "request from the LAN must carry one")
    try:
        addr = ipaddress.ip_address(inv.hosts[inv.gateway.host].address)
    except (ValueError, KeyError):
        addr = None
    if addr is None or addr not in inv.lan.cidr:
        yield ("gateway.lan.listen", f"the gateway host's address must be an IP in lan.cidr "
                                     f"({inv.lan.cidr}) to listen on the LAN")
    if lan.allow is not None and not lan.allow:
        yield ("gateway.lan.allow", "empty: list the CIDRs that may reach the gateway "
                                    "(omit it for the admin LAN)")


def check_reach(inv: Inventory) -> Iterator[tuple[str, str]]:
    """Every check of this module."""
    from hearth.inventory.validate_devices import check_client_devices

    yield from check_lan_exposure(inv)
    yield from check_client_devices(inv)
    yield from check_model_aliases(inv)
    yield from check_timeouts(inv)
