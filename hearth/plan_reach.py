"""The plan's "Gateway reach" section: listen addresses, model aliases, timeouts."""

from __future__ import annotations

from collections.abc import Iterator

from hearth.gateway.config import HealthCfg, Timeouts
from hearth.gateway.from_inventory import upstream_name
from hearth.inventory import Inventory

_KEYS = ("connect_s", "first_byte_s", "idle_s", "total_s")


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k.removesuffix('_s').replace('_', '-')} {v:g}s"
                     for k, v in values.items())


def reach_lines(inv: Inventory) -> Iterator[str]:
    """Where clients reach the gateway, the names they may use, its upstream timeouts."""
    if inv.gateway is None:
        return
    gw = inv.gateway
    yield "Gateway reach"
    yield f"  listen: 127.0.0.1:{gw.port}, {inv.hosts[gw.host].overlay_ip}:{gw.port} (overlay)"
    if gw.lan.listen:
        yield (f"  listen on the LAN: {inv.hosts[gw.host].address}:{gw.port}, open to "
               f"{', '.join(gw.lan.sources(inv.lan.admin))}; a client key on every request, "
               "no admin API")
    if inv.k3s is not None:
        from hearth.configs.gateway_service import url

        yield f"  in the cluster: {url(inv)} (Service + EndpointSlice on the overlay address)"
    if inv.client_devices is not None:
        cd = inv.client_devices
        yield (f"  client devices ({cd.cidr}, peers of {gw.host}; the gateway port only): "
               + (", ".join(f"{n} {d.address}" for n, d in cd.devices.items()) or "none yet"))
    from hearth.configs.unmanaged import lan_only, upstream_address

    for name, host in inv.hosts.items():  # managed: false: routed to, never connected to
        if not host.managed and host.serves:
            where = "LAN, not on the overlay" if lan_only(inv, name) else "overlay"
            yield (f"  routed to, not managed: {name} at {upstream_address(inv, name)} ({where}): "
                   + ", ".join(f"{s.name} ({s.engine}, port {s.listen_port})" for s in host.serves))
    for alias, target in inv.model_aliases.items():
        yield f"  model alias {alias} -> {target}"
    base = Timeouts().model_dump()
    base.update({k: v for k, v in gw.timeouts.set_values().items() if k in _KEYS})
    probe = gw.timeouts.probe_s or HealthCfg().timeout_s
    yield f"  timeouts (default): {_fmt(base)}, probe {probe:g}s"
    for hname, host in inv.hosts.items():
        for i, s in enumerate(host.serves):
            own = {**host.timeouts.set_values(), **s.timeouts.set_values()}
            if own:
                name = upstream_name(hname, i, len(host.serves))
                yield f"  timeouts {name} ({s.name}): {_fmt({**base, **own})}"
