"""Lab: the gateway host's output chain, with real packets (issue 22 item 4).

On the gateway host, the gateway's own connections (its user, ``hearth-gateway``)
reach on the LAN and the overlay exactly what ``hearth.configs.firewall_egress``
derives from the inventory: each upstream's address and port over the way the
inventory says, the recovery triggers, the Wake-on-LAN broadcast. Connections are
opened as that user (``setpriv``) on the gateway host: one the chain refuses fails
at once with EHOSTUNREACH (the chain's ICMP admin-prohibited, delivered locally);
one it lets through reaches the peer (connected, refused by the peer, or unanswered
by a sleeping box). The same connections as root reach the peer: the rest of the
host's output is left alone. Nothing is changed on the lab.
"""

from __future__ import annotations

import shlex
from typing import Any
from urllib.parse import urlsplit

import pytest

from hearth.configs import firewall_egress
from hearth.configs.gateway import USER
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory

pytestmark = pytest.mark.lab

REFUSED = "EHOSTUNREACH"  # within the probe's first second: the chain's reject, never the network
PROBE = """
import errno, socket, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.settimeout(3)
t0 = time.monotonic()
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as e:
    name = errno.errorcode.get(e.errno, str(e.errno))
    print(name if name != "EHOSTUNREACH" or time.monotonic() - t0 < 1 else "EHOSTUNREACH-late")
"""


def connect(node: Any, address: str, port: int, as_gateway: bool) -> str:
    """What a TCP connect from the gateway host gives: connected, timeout or an errno name."""
    who = f"setpriv --reuid={USER} --regid={USER} --clear-groups " if as_gateway else ""
    return node.check_output(f"sudo {who}python3 -c {shlex.quote(PROBE)} {address} {port}").strip()


def absent_addresses(inv: Any) -> set[str]:
    """The addresses of boxes hearth does not manage (no lab machine stands there)."""
    out: set[str] = set()
    for host in (h for h in inv.hosts.values() if not h.managed):
        out.add(str(host.address))
        out.update(urlsplit(s.base_url).hostname or "" for s in host.serves if s.base_url)
    return out


def test_the_gateway_reaches_exactly_its_upstreams(lab: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    gw = inv.gateway.host
    allowed = [e for e in firewall_egress.egress(inv, gw) if e.proto == "tcp"]
    if not allowed:
        pytest.skip("the gateway has no upstream on the LAN or the overlay")
    node = lab.host(gw)
    # A box hearth does not manage stands on the lab's LAN only inside its own check
    # (test_unmanaged_lan.py, which checks its egress with the box up): toward an
    # address where nothing answers ARP, a connect joining the gateway's own health
    # probe's failing resolution fails with EHOSTUNREACH as fast as the chain's reject.
    absent = absent_addresses(inv)
    for e in allowed:  # let through: whatever the peer answers, never refused here
        if e.address not in absent:
            assert connect(node, e.address, e.port, as_gateway=True) != REFUSED, e
    # the same hosts on a port the gateway has no business with (their SSH, open to
    # the LAN and the overlay): refused at once for the gateway, open for the host itself
    ssh_port = inv.ssh.port
    others = [(n, h) for n, h in inv.hosts.items() if n != gw and h.managed and not h.sleep.sleeps
              and h.os == "linux"]
    assert others, "a host that stays up to aim at"
    name, target = others[0]
    wanted = {(e.address, e.port) for e in allowed}
    for address in (str(target.overlay_ip), target.address):
        port = target.ssh_port or ssh_port
        assert (address, port) not in wanted
        assert connect(node, address, port, as_gateway=True) == REFUSED, (name, address, port)
        assert connect(node, address, port, as_gateway=False) == "connected", (name, address, port)
    # loopback stays open to the gateway (its own port; an SSH tunnel's local end)
    assert connect(node, "127.0.0.1", inv.gateway.port, as_gateway=True) == "connected"
