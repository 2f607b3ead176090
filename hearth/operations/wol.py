"""Wake-on-LAN on a host's NIC, now (ethtool); the .link file keeps it across reboots."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation

from hearth.facts.wol import WakeOnLan


@operation()
def enabled(mac: str):
    """
    Turn on magic-packet wake (``ethtool -s IFACE wol g``) on the NIC with ``mac``,
    if its driver supports it; a NIC that cannot wake is reported, not failed.

    + mac: the NIC's MAC address (the one the gateway sends magic packets to)

    **Example:**

    .. code:: python

        wol.enabled(name="Wake-on-LAN on", mac="d8:bb:c1:30:60:12")
    """
    info = host.get_fact(WakeOnLan, mac=mac)
    if info is None:
        # ethtool arrives in this very run: decide on the host, once.
        mac_q = shlex.quote(mac.lower())
        yield StringCommand(
            "for d in /sys/class/net/*; do "
            f'if [ "$(cat "$d/address" 2>/dev/null)" = {mac_q} ]; then '
            'if ethtool "${d##*/}" 2>/dev/null | grep -q "Supports Wake-on: .*g"; '
            'then ethtool -s "${d##*/}" wol g; fi; fi; done'
        )
        return
    if info["interface"] is None:
        raise OperationError(f"Wake-on-LAN: {info['reason']}: the inventory's `mac` for this host is wrong")
    if not info["supported"]:
        host.noop(f"Wake-on-LAN unavailable: {info['reason']}")
        return
    if info["enabled"]:
        host.noop(f"{info['interface']} already wakes on a magic packet")
        return
    yield StringCommand("ethtool", "-s", shlex.quote(info["interface"]), "wol", "g")
