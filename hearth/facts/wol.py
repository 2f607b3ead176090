"""Wake-on-LAN state of the NIC that carries a given MAC address (read with ethtool)."""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase


def parse_ethtool(lines: list[str]) -> dict[str, Any]:
    """The fact's view of ``mac:``/``interface:``/``driver:`` lines and ``ethtool IFACE``'s output.

    ``supported`` is true only when the driver lists magic-packet wake (``g`` in
    "Supports Wake-on"); a driver that reports nothing (a veth, many virtual NICs)
    is unsupported, with the reason said, never assumed to work.
    """
    info: dict[str, Any] = {"mac": "", "interface": None, "driver": "", "supports": "", "wake_on": "", "error": ""}
    for raw in lines:
        line = raw.strip()
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "mac" and not info["mac"]:
            info["mac"] = line.partition(": ")[2]
        elif key == "interface":
            info["interface"] = value
        elif key == "driver":
            info["driver"] = value
        elif key == "Supports Wake-on":
            info["supports"] = value
        elif key == "Wake-on":
            info["wake_on"] = value
        elif line.startswith("Cannot get wake-on-lan settings"):
            info["error"] = line
    info["supported"] = "g" in info["supports"]
    info["enabled"] = info["supported"] and "g" in info["wake_on"]
    driver = f" ({info['driver']})" if info["driver"] else ""
    if info["interface"] is None:
        info["reason"] = f"no network interface has the MAC {info['mac']}"
    elif info["error"]:
        info["reason"] = f"{info['interface']}{driver}: {info['error']}"
    elif not info["supports"]:
        info["reason"] = f"{info['interface']}{driver} reports no Wake-on-LAN support (ethtool lists no modes)"
    elif not info["supported"]:
        info["reason"] = f"{info['interface']}{driver} wakes only on '{info['supports']}', not on a magic packet (g)"
    else:
        info["reason"] = ""
    return info


def ethtool_script(mac: str) -> str:
    """Shell that finds the interface with ``mac`` and prints its driver and ``ethtool`` output."""
    mac = mac.lower()
    return (
        f"echo mac: {shlex.quote(mac)}; "
        "for d in /sys/class/net/*; do "
        f'if [ "$(cat "$d/address" 2>/dev/null)" = {shlex.quote(mac)} ]; then '
        'echo "interface: ${d##*/}"; '
        'echo "driver: $(basename "$(readlink "$d/device/driver" 2>/dev/null)" 2>/dev/null)"; '
        'ethtool "${d##*/}" 2>&1; break; fi; done; true'
    )


class WakeOnLan(FactBase[dict[str, Any]]):
    """
    Wake-on-LAN of the NIC with ``mac``: ``interface``, ``driver``, ``supports``
    (ethtool's "Supports Wake-on" letters), ``wake_on`` (the current ones),
    ``supported``/``enabled`` (magic packet, ``g``) and ``reason`` when unsupported.

    .. code:: python

        host.get_fact(WakeOnLan, mac="d8:bb:c1:30:60:12")
        # {"interface": "enp5s0", "supports": "pumbg", "wake_on": "g", "supported": True, ...}
    """

    requires_command = "ethtool"

    def command(self, mac: str) -> str:
        return ethtool_script(mac)

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_ethtool(output)
