"""Lab: a client device on the overlay (`hearth client add`), with real packets.

The test enrols a device named ``laptop`` in a copy of the inventory under test with
`hearth client add` (key pair made here, public key into the copy, config + QR code
into a temporary folder), applies the copy's overlay and firewall roles (the only
ones a device changes), and plugs a network namespace standing for the laptop into
the lab bridge at a LAN address outside the gateway's LAN exposure. With only its
generated config (wg-quick + wireguard-go in that namespace), the laptop reaches the
gateway over the overlay, with its client key, and nothing else: not the gateway
host's other ports, and not one other host on the overlay even after it widens its
own AllowedIPs to the whole overlay (the server side refuses, not the device's good
manners). The module ends by applying the original inventory again.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import firewall
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle, network
from hearth.lab.visitor import Visitor, free_address, visitor
from tests.lab.test_gateway import client_key

pytestmark = pytest.mark.lab
DEVICE = "laptop"
ROLES = '''"""Only the roles a client device changes (test_client_devices)."""
from pyinfra import host, local

if "linux" in host.groups:
    local.include("roles/overlay/main.py")
    local.include("roles/firewall/main.py")
'''
# (address, port) pairs -> {"address:port": open?}, all tried at once, 3 s each
_PROBE = """
import json, socket, sys, concurrent.futures as cf
def probe(t):
    a, p = t.rsplit(":", 1)
    try:
        socket.create_connection((a, int(p)), timeout=3).close()
        return t, True
    except OSError:
        return t, False
with cf.ThreadPoolExecutor(32) as ex:
    print(json.dumps(dict(ex.map(probe, sys.argv[1:]))))
"""
_HTTP = """
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    req.add_header('Authorization', 'Bearer ' + sys.argv[2])
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"""


def _deploy(inventory: Path, roles: Path) -> None:
    run = cycle.deploy(cycle.pyinfra_inventory_for(inventory), roles)
    assert run.ok, f"deploy of {inventory.name} failed: {run.failed_hosts}\n{run.stderr_tail}"


@pytest.fixture(scope="module")
def enrolled(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """(inventory with the device, the device's config file), applied to the lab."""
    if not lab.local:
        pytest.skip("changes the lab's overlay and plugs a namespace into its bridge")
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None or inv.overlay.kind != "wireguard":
        pytest.skip("client devices need a gateway and hearth's WireGuard overlay")
    if shutil.which("wireguard-go") is None or shutil.which("wg-quick") is None:
        pytest.skip("the stand-in laptop needs wireguard-go and wg-quick here "
                    "(apt-get install wireguard-go wireguard-tools)")
    work = tmp_path_factory.mktemp("client-device")
    copy = work / lab.inventory.name
    shutil.copy(lab.inventory, copy)
    roles = work / "roles.py"
    roles.write_text(ROLES)
    hearth = Path(sys.executable).with_name("hearth")
    add = subprocess.run([str(hearth), "client", "add", str(copy), DEVICE, "--out",
                          str(work / "device"), "--quiet"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert add.returncode == 0, add.stderr
    private = next(ln for ln in (work / "device" / f"{inv.name}-{DEVICE}.conf").read_text().splitlines()
                   if ln.startswith("PrivateKey"))
    assert private.split(" = ", 1)[1] not in copy.read_text() + add.stdout + add.stderr
    try:
        _deploy(copy, roles)
        yield load_inventory(copy, group_defaults()), work / "device" / f"{inv.name}-{DEVICE}.conf"
    finally:
        _deploy(lab.inventory, roles)  # the lab as the inventory under test says again


@pytest.fixture(scope="module")
def laptop(lab: Any, enrolled: tuple[Any, Path]) -> Iterator[tuple[Visitor, Any, str]]:
    """(the laptop's namespace, the inventory, its WireGuard interface), tunnel up."""
    inv, conf = enrolled
    lan = inv.gateway.lan
    outside = [ipaddress.ip_network(n) for n in lan.sources(inv.lan.admin)] if lan.listen else []
    taken = {h.address for h in inv.hosts.values()} | {lab.spec.host_ip}
    address = free_address(lab.spec.cidr, taken, outside=outside)
    if address is None:
        pytest.skip("no free LAN address outside the gateway's LAN exposure")
    iface = f"{network.NETNS_PREFIX}lap"[:15]
    wgconf = conf.parent / f"{iface}.conf"  # wg-quick names the interface after the file
    shutil.copy(conf, wgconf)
    wgconf.chmod(0o600)
    with visitor("lap", address, lab.spec.cidr) as v:
        try:
            up = v.run(["wg-quick", "up", str(wgconf)], timeout=60)
            assert up.returncode == 0, up.stderr
            yield v, inv, iface
        finally:
            v.run(["wg-quick", "down", str(wgconf)], timeout=60)
            pids = subprocess.run(["ip", "netns", "pids", v.netns], capture_output=True, text=True,
                                  check=False).stdout.split()
            for pid in pids:  # a wireguard-go this test started in its own namespace
                os.kill(int(pid), signal.SIGTERM)


def probe(v: Visitor, targets: list[str]) -> dict[str, bool]:
    run = v.run([sys.executable, "-c", _PROBE, *targets], timeout=60)
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def http(v: Visitor, url: str, key: str = "") -> tuple[int, str]:
    run = v.run([sys.executable, "-c", _HTTP, url, key], timeout=60)
    assert run.returncode == 0, run.stderr
    status, _, body = run.stdout.partition("\n")
    return int(status), body


def gateway_target(inv: Any) -> str:
    return f"{inv.hosts[inv.gateway.host].overlay_ip}:{inv.gateway.port}"


def test_laptop_reaches_the_gateway_over_the_overlay_with_its_key(laptop: Any) -> None:
    v, inv, iface = laptop
    target = gateway_target(inv)
    deadline = time.monotonic() + 60  # the first packet starts the handshake
    while not probe(v, [target])[target]:
        assert time.monotonic() < deadline, v.run(["wg", "show", iface]).stdout
    assert "latest handshake" in v.run(["wg", "show", iface]).stdout
    status, body = http(v, f"http://{target}/v1/models")
    assert status == 401, body
    status, body = http(v, f"http://{target}/v1/models", client_key(inv))
    assert status == 200, body
    prefix = inv.routing.alias_prefix if inv.routing else "hearth"
    assert f"{prefix}/auto" in {m["id"] for m in json.loads(body)["data"]}


def test_laptop_reaches_nothing_else_even_with_wider_allowed_ips(laptop: Any) -> None:
    v, inv, iface = laptop
    gw = inv.gateway.host
    target = gateway_target(inv)
    probe(v, [target])  # the tunnel is up (the previous test waited for it)

    def others() -> list[str]:
        out = []
        for name, host in inv.hosts.items():
            if host.os != "linux" or host.sleep.sleeps or not host.managed:
                continue
            ports = {host.ssh_port or inv.ssh.port} | {p for proto, p, _ in firewall.service_ports(inv, name)
                                                       if proto == "tcp"}
            out += [f"{host.overlay_ip}:{p}" for p in sorted(ports) if f"{host.overlay_ip}:{p}" != target]
        return out

    closed = others()
    assert any(t.startswith(f"{inv.hosts[gw].overlay_ip}:") for t in closed)
    seen = probe(v, [*closed, target])
    assert seen.pop(target), "the gateway port answers"
    assert not any(seen.values()), f"with the generated config: {seen}"
    # The device widens its own AllowedIPs and route to the whole overlay: still nothing.
    pub = v.run(["wg", "show", iface, "peers"]).stdout.split()[0]
    assert v.run(["wg", "set", iface, "peer", pub, "allowed-ips", str(inv.overlay.cidr)]).returncode == 0
    assert v.run(["ip", "route", "replace", str(inv.overlay.cidr), "dev", iface]).returncode == 0
    seen = probe(v, [*closed, target])
    assert seen.pop(target), "the gateway port still answers"
    assert not any(seen.values()), f"with AllowedIPs {inv.overlay.cidr}: {seen}"
