"""Lab: the nftables ruleset lets exactly the right packets in.

Real packets: a service port answers over the overlay and is dropped from a LAN
address (this machine's bridge address and a lab machine's LAN address); SSH
keeps working; a deliberately broken ruleset is refused by the kernel's check
and changes nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import firewall as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle
from tests.lab.packets import listen, stop, tcp_open_from, tcp_open_from_here

pytestmark = pytest.mark.lab


def inventory(lab: Any) -> Any:
    return load_inventory(lab.inventory, group_defaults())


def test_live_ruleset_is_the_rendered_one(lab: Any, host: Any, machine: str) -> None:
    cf = configs.ruleset(inventory(lab), machine)
    assert host.service("hearth-firewall").is_enabled  # hearth's own boot unit, not nftables.service
    rules = host.file(cf.dest)
    assert rules.mode == 0o600 and rules.user == "root"
    assert host.check_output(f"sudo sha256sum {cf.dest}").split()[0] == hashlib.sha256(cf.render().encode()).hexdigest()
    live = host.check_output(f"sudo nft list table {configs.FAMILY} {configs.TABLE}")
    assert f'comment "{cf.context["stamp"]}"' in live
    assert "policy drop;" in live
    assert f'tcp dport {inventory(lab).ssh.port} accept comment "ssh"' in live


def test_ssh_still_reachable(lab: Any, machine: str) -> None:
    inv = inventory(lab)
    assert tcp_open_from_here(inv.hosts[machine].address, inv.ssh.port)
    assert lab.host(machine).check_output("echo ok") == "ok"


def test_ping_from_the_lan(lab: Any, machine: str) -> None:
    inv = inventory(lab)
    other = next(n for n in inv.linux_hosts() if n != machine)
    assert lab.host(other).run(f"ping -c1 -W2 {inv.hosts[machine].address}").rc == 0


@pytest.fixture
def service_port(lab: Any) -> Any:
    """A host serving a model, with a listener on its serve port and on a port it does not open."""
    inv = inventory(lab)
    name, serve = next((n, s) for n, s in inv.serves() if inv.hosts[n].os == "linux")
    node = lab.host(name)
    closed = 18999  # opened by no role
    started: list[str] = []
    try:
        for port in (serve.listen_port, closed):
            listen(node, port, started)
        yield inv, name, serve.listen_port, closed
    finally:
        stop(node, started)


def test_service_port_only_over_the_overlay(lab: Any, service_port: Any) -> None:
    inv, name, port, closed = service_port
    target = inv.hosts[name]
    peer = next(n for n in inv.linux_hosts() if n != name)
    via_peer = lab.host(peer)
    assert tcp_open_from(via_peer, str(target.overlay_ip), port), "over the overlay: must answer"
    assert not tcp_open_from(via_peer, target.address, port), "peer's LAN address: must be dropped"
    assert not tcp_open_from_here(target.address, port), "this machine's LAN address: must be dropped"
    assert not tcp_open_from(via_peer, str(target.overlay_ip), closed), "a port no role opens: dropped"
    assert tcp_open_from(lab.host(name), "127.0.0.1", closed), "loopback is always accepted"


def test_broken_ruleset_is_refused_and_ssh_survives(lab: Any, tmp_path: Path) -> None:
    inv = inventory(lab)
    name = inv.linux_hosts()[-1]
    node = lab.host(name)
    cf = configs.ruleset(inv, name)
    broken = cf.render().replace(f'tcp dport {inv.ssh.port} accept', 'tcp dport twenty-two accept')
    assert broken != cf.render()
    deploy = tmp_path / "broken.py"
    deploy.write_text(
        "from hearth.operations import nftables\n"
        f"nftables.ruleset(name='broken ruleset', content={broken!r}, dest={cf.dest!r},\n"
        f"                 family={configs.FAMILY!r}, table={configs.TABLE!r}, stamp={cf.context['stamp']!r})\n"
    )
    before = node.check_output(f"sudo sha256sum {cf.dest}")
    live_before = node.check_output(f"sudo nft list table {configs.FAMILY} {configs.TABLE}")
    node.check_output(f"sudo nft delete table {configs.FAMILY} {configs.TABLE}")  # force the op to try
    try:
        run = cycle.run_pyinfra(cycle.pyinfra_inventory_for(lab.inventory), deploy, limit=name, timeout=300)
        assert run.returncode != 0, "the broken ruleset must be refused"
        assert "rejected by: nft -c -f" in run.stderr + run.stdout
        assert node.check_output(f"sudo sha256sum {cf.dest}") == before
        assert node.run(f"test -e {cf.dest}.hearth-new").rc != 0
        assert tcp_open_from_here(inv.hosts[name].address, inv.ssh.port)
        assert node.check_output("echo ok") == "ok"
    finally:
        node.check_output(f"sudo nft -f {cf.dest}")
    assert node.check_output(f"sudo nft list table {configs.FAMILY} {configs.TABLE}") == live_before


# --- issue 9 item 1b / item 4: no lockout, coexistence ------------------------------------


def run_roles(inventory_yml: Path, roles: list[str], limit: str | None, tmp_path: Path) -> subprocess.CompletedProcess:
    """pyinfra with a deploy file that includes only ``roles`` (as deploy.py would)."""
    deploy = tmp_path / "only.py"
    deploy.write_text("from pyinfra import local\n" + "".join(
        f"local.include({str(cycle.REPO / 'roles' / r / 'main.py')!r})\n" for r in roles))
    return cycle.run_pyinfra(cycle.pyinfra_inventory_for(inventory_yml), deploy, limit=limit, timeout=300)


def fresh_ssh(lab: Any, name: str) -> bool:
    """A brand-new SSH login (no shared connection), as the deploy's next run would make."""
    spec = lab.spec
    argv = ["ssh", "-i", str(spec.ssh_key), "-p", str(spec.ssh_port), "-o", f"UserKnownHostsFile={spec.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "ControlPath=none", f"{spec.ssh_user}@{spec.machine(name).address}", "true"]
    return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0


def narrowed_admin(lab: Any, inv: Any) -> str | None:
    """The smallest range holding every lab machine but not this machine (the deployer)."""
    import ipaddress

    addresses = [ipaddress.ip_address(inv.hosts[n].address) for n in inv.linux_hosts()]
    for prefix in range(32, inv.lan.cidr.prefixlen, -1):
        net = ipaddress.ip_network(f"{addresses[0]}/{prefix}", strict=False)
        if all(a in net for a in addresses):
            return None if ipaddress.ip_address(lab.spec.host_ip) in net else str(net)
    return None


def test_deploy_from_outside_admin_cidr_is_refused(lab: Any, tmp_path: Path) -> None:
    """The deploy connects from this machine; with admin_cidr no longer holding it, the
    firewall refuses to load (the running session would survive, the next run hang)."""
    inv = inventory(lab)
    admin = narrowed_admin(lab, inv)
    if admin is None:
        pytest.skip("no range holds every machine without the deploying address")
    data = yaml.safe_load(lab.inventory.read_text())
    data["lan"]["admin_cidr"] = admin
    narrowed = tmp_path / lab.inventory.name
    narrowed.write_text(yaml.safe_dump(data, sort_keys=False))
    name = inv.linux_hosts()[-1]
    node = lab.host(name)
    before = node.check_output(f"sudo nft list table {configs.FAMILY} {configs.TABLE} | head -n 3")
    run = run_roles(narrowed, ["firewall"], name, tmp_path)
    said = run.stdout + run.stderr
    assert run.returncode != 0, said[-2000:]
    assert f"this deploy connects from {lab.spec.host_ip}" in said and "lan.admin_cidr" in said, said[-2000:]
    assert node.check_output(f"sudo nft list table {configs.FAMILY} {configs.TABLE} | head -n 3") == before
    assert fresh_ssh(lab, name)


def test_ufw_enabled_is_refused(lab: Any, tmp_path: Path) -> None:
    inv = inventory(lab)
    name = inv.linux_hosts()[0]
    node = lab.host(name)
    if node.run("test -e /etc/ufw/ufw.conf").rc == 0:
        pytest.skip("this machine has its own ufw configuration")
    node.check_output("sudo mkdir -p /etc/ufw && echo ENABLED=yes | sudo tee /etc/ufw/ufw.conf")
    try:
        run = run_roles(lab.inventory, ["firewall"], name, tmp_path)
    finally:
        node.check_output("sudo rm -rf /etc/ufw")
    assert run.returncode != 0
    assert "ufw manage this host's firewall" in run.stdout + run.stderr and "`ufw disable`" in run.stdout + run.stderr


def test_own_unit_leaves_other_tables_alone(lab: Any, machine: str) -> None:
    """Stopping hearth's unit deletes only its table (Debian's nftables.service would
    flush k3s's, flannel's and Docker's too); starting it loads the table again."""
    node = lab.host(machine)
    cf = configs.ruleset(inventory(lab), machine)
    assert node.service("hearth-firewall").is_enabled
    assert not node.service("nftables").is_enabled
    node.check_output("sudo nft add table ip hearth_test_other && sudo nft add chain ip hearth_test_other c")
    try:
        node.check_output("sudo systemctl start hearth-firewall && sudo systemctl stop hearth-firewall")
        assert node.run(f"sudo nft list table {configs.FAMILY} {configs.TABLE}").rc != 0
        assert node.run("sudo nft list table ip hearth_test_other").rc == 0
    finally:
        node.check_output("sudo systemctl start hearth-firewall")
        node.run("sudo nft delete table ip hearth_test_other")
    live = node.check_output(f"sudo nft list table {configs.FAMILY} {configs.TABLE}")
    assert f'comment "{cf.context["stamp"]}"' in live
