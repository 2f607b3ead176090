"""Lab: the gateway on the LAN (``gateway.lan``), with real packets.

Everything comes from the inventory under test: the gateway's LAN address and port,
the CIDRs it is open to (the admin LAN unless ``gateway.lan.allow`` lists others),
the machines inside and outside them. Besides the lab machines, two short-lived
namespaces on the lab bridge stand for devices hearth does not manage, one at an
address inside the listed CIDRs and one in ``lan.cidr`` outside them: the port
answers the first and drops the second. From the LAN every request needs a client
key (the keyless health and metrics endpoints included) and the admin API is refused
even with its token, which still works over the overlay.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory, resolve_secret
from hearth.lab.visitor import Visitor, free_address, visitor
from tests.lab.test_gateway import client_key

pytestmark = pytest.mark.lab

# (status, body) of one HTTP request; the key/token header as argv[3], may be empty
_HTTP = """
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode() or None)
if sys.argv[3]:
    req.add_header('Authorization', 'Bearer ' + sys.argv[3])
req.add_header('Content-Type', 'application/json')
try:
    with urllib.request.urlopen(req, timeout=120) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"""
# one ICMP echo (raw socket, root): exit 0 when the address answers within 3 s
_PING = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(3)
hdr = struct.pack('!BBHHH', 8, 0, 0, 0x4845, 1) + b'hearth'
c = sum(struct.unpack('!7H', hdr))
c = (c >> 16) + (c & 0xffff)
c = ~(c + (c >> 16)) & 0xffff
s.sendto(hdr[:2] + struct.pack('!H', c) + hdr[4:], (sys.argv[1], 0))
while True:
    data, addr = s.recvfrom(1500)
    if addr[0] == sys.argv[1] and data[20] == 0:
        sys.exit(0)
"""
_TCP = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)"


@pytest.fixture(scope="module")
def inv(lab: Any) -> Any:
    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.gateway is None or not inventory.gateway.lan.listen:
        pytest.skip("the gateway does not listen on the LAN in this inventory (gateway.lan)")
    return inventory


def sources(inv: Any) -> list[Any]:
    return [ipaddress.ip_network(n) for n in inv.gateway.lan.sources(inv.lan.admin)]


def inside(inv: Any, address: str) -> bool:
    addr = ipaddress.ip_address(address)
    return any(addr.version == n.version and addr in n for n in sources(inv))


def lan_target(inv: Any) -> tuple[str, int]:
    return inv.hosts[inv.gateway.host].address, inv.gateway.port


def taken(lab: Any, inv: Any) -> set[str]:
    return {h.address for h in inv.hosts.values()} | {lab.spec.host_ip}


def lan_device(lab: Any, inv: Any, tag: str, inside: bool) -> Iterator[Visitor]:
    """A namespace on the lab's LAN at a free address inside (or outside) every listed CIDR."""
    if not lab.local:
        pytest.skip("plugs a namespace into the local lab's bridge")
    where = {"inside": sources(inv)} if inside else {"outside": sources(inv)}
    address = free_address(lab.spec.cidr, taken(lab, inv), **where)
    if address is None:
        pytest.skip("no free LAN address inside the listed CIDRs" if inside else
                    f"the listed CIDRs cover the whole LAN {inv.lan.cidr}: no address outside")
    with visitor(tag, address, lab.spec.cidr) as v:
        yield v


@pytest.fixture(scope="module")
def insider(lab: Any, inv: Any) -> Iterator[Visitor]:
    """A device at a free address inside the listed CIDRs (local lab only)."""
    yield from lan_device(lab, inv, "in", inside=True)


@pytest.fixture(scope="module")
def outsider(lab: Any, inv: Any) -> Iterator[Visitor]:
    """A device on the LAN at an address outside every listed CIDR (local lab only)."""
    yield from lan_device(lab, inv, "out", inside=False)


def tcp_from_visitor(v: Visitor, address: str, port: int) -> bool:
    return v.run([sys.executable, "-c", _TCP, address, str(port)]).returncode == 0


def tcp_from_machine(node: Any, address: str, port: int) -> bool:
    return node.run(f"python3 -c {shlex.quote(_TCP)} {address} {port}").rc == 0


def http_from_visitor(v: Visitor, url: str, key: str = "", body: Any = None) -> tuple[int, str]:
    data = json.dumps(body) if body is not None else ""
    run = v.run([sys.executable, "-c", _HTTP, url, data, key], timeout=150)
    assert run.returncode == 0, run.stderr
    status, _, payload = run.stdout.partition("\n")
    return int(status), payload


def test_gateway_listens_on_its_lan_address(lab: Any, inv: Any) -> None:
    address, port = lan_target(inv)
    assert lab.host(inv.gateway.host).socket(f"tcp://{address}:{port}").is_listening


def test_lan_port_open_from_the_listed_cidrs_and_closed_from_the_rest(
        lab: Any, inv: Any, insider: Visitor, outsider: Visitor) -> None:
    address, port = lan_target(inv)
    seen: dict[str, tuple[bool, bool]] = {}  # who: (expected open, measured open)
    seen[f"visitor {insider.address}"] = (True, tcp_from_visitor(insider, address, port))
    seen[f"visitor {outsider.address}"] = (False, tcp_from_visitor(outsider, address, port))
    for name, host in inv.hosts.items():  # lab machines (awake ones), on their LAN address
        if host.os == "linux" and host.managed and name != inv.gateway.host and not host.sleep.sleeps:
            seen[f"{name} {host.address}"] = (inside(inv, host.address),
                                             tcp_from_machine(lab.host(name), address, port))
    wrong = {who: v for who, v in seen.items() if v[0] != v[1]}
    assert not wrong, f"(expected open, measured open) toward {address}:{port}: {wrong}"
    # the outsider is on the same LAN and reaches the gateway host itself (it answers
    # a ping): only the gateway port is closed to it, by the firewall
    assert outsider.run([sys.executable, "-c", _PING, address]).returncode == 0


def test_every_request_from_the_lan_needs_a_client_key(lab: Any, inv: Any, insider: Visitor) -> None:
    address, port = lan_target(inv)
    base = f"http://{address}:{port}"
    for path in ("/v1/models", "/api/tags", "/healthz", "/readyz", "/metrics"):
        status, body = http_from_visitor(insider, base + path)
        assert status == 401, (path, body)
        assert json.loads(body)["error"]["code"] == "invalid_api_key"
        status, _ = http_from_visitor(insider, base + path, "sk-not-a-client-key")
        assert status == 401, path
    key = client_key(inv)
    status, body = http_from_visitor(insider, base + "/v1/models", key)
    assert status == 200, body
    prefix = inv.routing.alias_prefix if inv.routing else "hearth"
    assert f"{prefix}/auto" in {m["id"] for m in json.loads(body)["data"]}
    status, body = http_from_visitor(insider, base + "/healthz", key)
    assert status == 200, body


def test_admin_api_refused_from_the_lan_even_with_its_token(lab: Any, inv: Any, insider: Visitor) -> None:
    address, port = lan_target(inv)
    token = resolve_secret(inv.gateway.admin_token)
    status, body = http_from_visitor(insider, f"http://{address}:{port}/admin/upstreams", token)
    assert status == 403, body
    assert json.loads(body)["error"]["code"] == "admin_network_refused"
    # the same token is accepted over the overlay (from another machine): the refusal is the network's
    peer = next(n for n, h in inv.hosts.items()
                if h.os == "linux" and n != inv.gateway.host and not h.sleep.sleeps)
    overlay = f"http://{inv.hosts[inv.gateway.host].overlay_ip}:{port}/admin/upstreams"
    out = lab.host(peer).check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' -m 20 -H {shlex.quote('Authorization: Bearer ' + token)} "
        f"{overlay}")
    assert out == "200"


def test_a_chat_from_the_lan_is_answered(lab: Any, inv: Any, insider: Visitor) -> None:
    """A device on the LAN, with its key, gets an answer from an always-on deployed model."""
    awake = [(n, s) for n, s in inv.serves()
             if inv.hosts[n].os == "linux" and s.engine == "ollama" and not inv.hosts[n].sleep.sleeps]
    if not awake:
        pytest.skip("no always-on model runs on an engine a hearth role installs")
    name, serve = awake[0]
    address, port = lan_target(inv)
    # The model goes back to how this check found it (unloaded, unless it was loaded):
    # later checks read what Ollama holds.
    gateway = lab.host(inv.gateway.host)
    ollama = f"http://{inv.hosts[name].overlay_ip or inv.hosts[name].address}:{serve.listen_port}"
    was_loaded = {serve.model, f"{serve.model}:latest"} & {m["name"] for m in json.loads(
        gateway.check_output(f"curl -sS -m 10 {ollama}/api/ps"))["models"]}
    body = {"model": serve.name, "messages": [{"role": "user", "content": "hello from the LAN"}]}
    try:
        status, payload = http_from_visitor(insider, f"http://{address}:{port}/v1/chat/completions",
                                            client_key(inv), body)
        assert status == 200, payload
        assert json.loads(payload)["choices"][0]["message"]["content"]
    finally:
        if not was_loaded:
            unload = json.dumps({"model": serve.model, "keep_alive": 0})
            gateway.run(f"curl -sS -m 30 {ollama}/api/generate -d {shlex.quote(unload)}")
