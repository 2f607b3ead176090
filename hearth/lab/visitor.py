"""A visitor on the lab LAN: a short-lived network namespace plugged into the bridge.

It stands for a device hearth does not manage (a laptop, a phone, a NAS) at an
address the test chooses, so a check can send real packets from inside and from
outside a CIDR without a lab machine of its own. Everything stays on the lab's
bridge; the namespace and its veth are removed on exit, whatever happened.
"""

from __future__ import annotations

import hashlib
import ipaddress
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hearth.lab import network
from hearth.lab.sh import run
from hearth.lab.spec import BRIDGE


@dataclass(frozen=True)
class Visitor:
    """The namespace ``netns`` with ``eth0`` at ``address`` on the lab bridge."""

    netns: str
    address: str

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace (never raises on a non-zero exit)."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True,
                              text=True, timeout=timeout, check=False)


def free_address(cidr: ipaddress.IPv4Network, taken: Iterable[str],
                 inside: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
                 outside: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
                 ) -> str | None:
    """The highest unused host address of ``cidr`` in every ``inside`` and no ``outside`` net."""
    used, ins, outs = set(taken), list(inside), list(outside)
    for addr in reversed(list(cidr.hosts())):
        if (str(addr) not in used and all(addr in n for n in ins if n.version == 4)
                and not any(addr in n for n in outs if n.version == 4)):
            return str(addr)
    return None


@contextmanager
def visitor(tag: str, address: str, cidr: ipaddress.IPv4Network) -> Iterator[Visitor]:
    """A namespace ``<prefix>v-<tag>`` with ``address``/prefix of ``cidr`` on the bridge."""
    netns = network.netns_name(f"v-{tag}")
    veth = "hv" + hashlib.sha1(netns.encode()).hexdigest()[:10]
    try:
        run(["ip", "netns", "add", netns])
        run(["ip", "-n", netns, "link", "set", "lo", "up"])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
        run(["ip", "-n", netns, "addr", "add", f"{address}/{cidr.prefixlen}", "dev", "eth0"])
        run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        yield Visitor(netns, address)
    finally:
        network.remove_machine_link(netns, veth)
