"""Lab: the CUDA recovery trigger answers the gateway host alone, with real packets (issue 11 item 4).

Every host with a trigger (``hearth.configs.recover_cuda.triggerable``: an NVIDIA host
running vLLM or Ollama that serves no terminal route) listens on its overlay address;
its firewall accepts that port from the gateway host's overlay address only. From the
gateway host, as the gateway's own user, a line reaches the trigger, which answers
``denied`` (the line is not the host's token: nothing is started); from another overlay
peer the same connection is dropped, while that peer still reaches the host's node
exporter over the overlay (so the drop is the trigger rule's, not a broken path).
Everything is derived from the inventory; nothing is changed on the lab (the trigger
logs one refused attempt per probe). A sleeping trigger host is left asleep.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from hearth.configs import recover_cuda
from hearth.configs.gateway import USER
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory

pytestmark = pytest.mark.lab

PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except socket.timeout:
    sys.exit(print("timeout"))
except OSError as e:
    sys.exit(print("error", e.errno))
if len(sys.argv) < 4:
    sys.exit(print("connected"))
s.sendall(sys.argv[3].encode() + b"\\n")
try:
    print("answered", s.recv(64).decode().strip())
except socket.timeout:
    print("connected, no answer")
"""


def probe(node: Any, address: str, port: int, line: str | None = None, user: str | None = None) -> str:
    """What a TCP connection from ``node`` gives: timeout, error N, connected, or the answer to ``line``."""
    who = f"setpriv --reuid={user} --regid={user} --clear-groups " if user else ""
    args = " ".join(shlex.quote(a) for a in (address, str(port), *([line] if line else [])))
    return node.check_output(f"sudo {who}python3 -c {shlex.quote(PROBE)} {args}").strip()


def awake(lab: Any, name: str) -> bool:
    """A local lab machine powered on (a real cluster's hosts are taken as up)."""
    if not lab.local:
        return True
    from hearth.lab import machine as lab_machine
    from hearth.lab.state import lab_root, load_record

    record = load_record(lab_root())
    return record is None or lab_machine.power_state(record.machines[name]) == "on"


def trigger_hosts(inv: Inventory) -> list[str]:
    return [n for n in inv.linux_hosts() if recover_cuda.triggerable(inv, n)]


def test_the_recovery_trigger_answers_the_gateway_host_alone(lab: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory: no recovery trigger")
    triggers = trigger_hosts(inv)
    if not triggers:
        pytest.skip("no host with a CUDA recovery trigger here (no NVIDIA host runs vLLM or Ollama "
                    "outside a terminal route)")
    up = [n for n in triggers if awake(lab, n)]
    if not up:
        pytest.skip(f"every host with a trigger is asleep ({', '.join(triggers)}); left asleep")
    gw = inv.gateway.host
    exporter = int(group_defaults()["node_exporter_port"])
    stay_up = [n for n in inv.linux_hosts() if n != gw and not inv.hosts[n].sleep.sleeps]
    for name in up:
        address = str(inv.hosts[name].overlay_ip)
        answer = probe(lab.host(gw), address, recover_cuda.PORT, "hearth-firewall-check", USER)
        assert answer == "answered denied", f"the gateway ({gw}) to {name}'s trigger: {answer}"
        peers = [n for n in stay_up if n != name]
        assert peers, f"an overlay peer of {name} other than the gateway host, to try from"
        hub = inv.overlay.hub if inv.overlay.topology == "hub" else None
        peer = hub if hub in peers else peers[0]  # the hub forwards everyone's traffic: the strongest try
        node = lab.host(peer)
        assert probe(node, address, exporter) == "connected", f"{peer} reaches {name} over the overlay"
        answer = probe(node, address, recover_cuda.PORT, "hearth-firewall-check")
        assert answer == "timeout", f"{peer} (not the gateway host) to {name}'s trigger must be dropped: {answer}"
