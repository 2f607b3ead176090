"""Lab: a box hearth routes to but does not manage, reached over the LAN only (issue 22 item 4).

The inventory names a ``managed: false`` host with ``reach: lan`` and no overlay
address (``lab-nas`` in inventory/lab.yml): hearth builds no machine for it, deploys
nothing there and never connects to it. This check stands it in for the time of the
check: a network namespace at the host's LAN address on the lab bridge, running a
small OpenAI-compatible test server (``tests.lab.test_upstreams.SERVER``, a test
server, not a stand-in of any product) at the port of its ``base_url``, a process
hearth does not deploy. Then, all derived from the inventory:

- the gateway health-probes it at that LAN address and reports it healthy;
- a chat pinned to its served name, sent with the official ``openai`` client from
  another lab machine, is answered by it through the gateway;
- the gateway host's output chain, with real packets: the gateway's user reaches
  that address:port, and is refused at once (EHOSTUNREACH) on another port of the same box,
  which root on the same host reaches (the box answers with a reset).

The namespace and the server go in a ``finally``; the gateway then sees it down
again, as before the check.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from hearth.configs import unmanaged
from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import upstream_name
from hearth.inventory import load_inventory
from hearth.lab.visitor import visitor
from tests.lab.admin_api import upstream_state
from tests.lab.test_gateway_egress import REFUSED, connect
from tests.lab.test_upstreams import SERVER

pytestmark = pytest.mark.lab


def _wait(what: str, ok: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        assert time.monotonic() < deadline, what
        time.sleep(1)


def test_a_lan_only_box_is_probed_answers_through_the_gateway_and_is_the_only_egress(lab: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    if not lab.local or inv.gateway is None:
        pytest.skip("stands a box in on the local lab's bridge; needs a gateway")
    boxes = [(n, i, s) for n, h in inv.hosts.items() if unmanaged.lan_only(inv, n)
             for i, s in enumerate(h.serves)]
    if not boxes:
        pytest.skip("no managed: false host reached on the LAN in this inventory")
    name, index, serve = boxes[0]
    host = inv.hosts[name]
    up = upstream_name(name, index, len(host.serves))
    url = urlsplit(serve.base_url or f"http://{host.address}:{serve.listen_port}")
    address, port = url.hostname or host.address, url.port or serve.listen_port
    gateway = lab.host(inv.gateway.host)
    assert upstream_state(gateway, inv, up) != "healthy", "something already answers there"

    from hearth.lab import try_gateway
    from hearth.lab.state import lab_root, load_record

    record = load_record(lab_root())
    assert record is not None
    with visitor("nas", host.address, inv.lan.cidr) as box:
        server = subprocess.Popen(["ip", "netns", "exec", box.netns, sys.executable, "-c", SERVER,
                                   address, str(port), serve.name],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _wait(f"the test server listens on {address}:{port}",
                  lambda: bool(box.run(["ss", "-Hltn", f"sport = :{port}"]).stdout.strip()), 30)
            # health-probed on the LAN address, as the inventory says
            _wait(f"{up} healthy in the gateway", lambda: upstream_state(gateway, inv, up) == "healthy", 90)
            # a chat through the gateway with the official openai client, from another machine
            result = try_gateway.ask(record, lab.inventory, serve.name, "hello over the LAN")
            assert result.status == 200, result
            assert result.upstream == up, result
            assert result.answer == f"answered by {serve.name}", result
            # the gateway's egress: exactly that address:port on the box
            assert connect(gateway, address, port, as_gateway=True) == "connected"
            other = 22 if port != 22 else 23
            assert connect(gateway, address, other, as_gateway=True) == REFUSED
            assert connect(gateway, address, other, as_gateway=False) == "ECONNREFUSED"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
    # as before the check: the gateway sees the box down again
    _wait(f"{up} no longer healthy", lambda: upstream_state(gateway, inv, up) != "healthy", 90)
