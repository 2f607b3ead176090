"""Lab: the WireGuard overlay carries real packets between every pair of machines.

Mesh: every host peers with every other. Hub: spokes peer with the hub only and
reach each other through it. Which one comes from the inventory under test.

The deploy-running tests change the lab and put it back: a host that loses its
key pair gets a new one that every peer learns in one run (the two-phase
problem), and a host removed from the inventory disappears from every peer.
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import firewall as firewall_configs
from hearth.configs import overlay as overlay_configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle, power_cli
from hearth.lab.state import lab_root, load_record

pytestmark = pytest.mark.lab


def inventory(lab: Any) -> Any:
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.overlay.kind != "wireguard":
        pytest.skip(f"overlay.kind is {inv.overlay.kind}: hearth does not manage it (see test_overlay_existing)")
    return inv


@pytest.fixture(scope="module")
def iface(lab: Any) -> str:
    return str(inventory(lab).overlay.interface)


def expected_peers(inv: Any, name: str) -> set[str]:
    """The hosts ``name`` peers with directly, by the inventory's topology."""
    linux = inv.linux_hosts()  # the hosts hearth manages
    if inv.overlay.topology == "hub" and name != inv.overlay.hub:
        return {inv.overlay.hub}
    return {n for n in linux if n != name}


def test_keys_and_config_are_private(host: Any, iface: str) -> None:
    with host.sudo():
        key = host.file(f"/etc/wireguard/{iface}.key")
        config = host.file(f"/etc/wireguard/{iface}.conf")
        assert key.exists and key.mode == 0o600 and key.user == "root"
        assert config.exists and config.mode == 0o600 and config.user == "root"
        assert host.file("/etc/wireguard").mode == 0o700
    assert not host.file(f"/etc/wireguard/{iface}.key").exists  # the automation user cannot even see it
    assert "PrivateKey" not in host.check_output(f"sudo cat /etc/wireguard/{iface}.conf")


def test_interface_up_with_its_topology_peers(lab: Any, host: Any, machine: str, iface: str) -> None:
    inv = inventory(lab)
    unit = host.service(f"wg-quick@{iface}")
    assert unit.is_enabled and unit.is_running
    addresses = host.check_output(f"ip -o -4 addr show dev {iface}")
    assert f"{inv.hosts[machine].overlay_ip}/{inv.overlay.cidr.prefixlen}" in addresses
    peers = host.check_output(f"sudo wg show {iface} endpoints").splitlines()
    expected = {f"{inv.hosts[n].address}:{inv.overlay.port}" for n in expected_peers(inv, machine)}
    assert {line.split()[1] for line in peers} == expected
    assert host.socket(f"udp://0.0.0.0:{inv.overlay.port}").is_listening or \
        host.socket(f"udp://:::{inv.overlay.port}").is_listening


def test_userspace_only_where_the_kernel_lacks_wireguard(host: Any) -> None:
    dropin = host.file("/etc/systemd/system/wg-quick@.service.d/hearth-userspace.conf")
    kernel = host.run("test -d /sys/module/wireguard || modprobe --dry-run --quiet wireguard").rc == 0
    assert dropin.exists is (not kernel)
    if not kernel:
        assert host.process.filter(comm="wireguard-go")


def test_ping_between_every_pair(lab: Any) -> None:
    inv = inventory(lab)
    names = inv.linux_hosts()
    failures = []
    for a, b in permutations(names, 2):
        target = inv.hosts[b].overlay_ip
        if lab.host(a).run(f"ping -c1 -W3 {target}").rc != 0:
            failures.append(f"{a} -> {b} ({target})")
    assert not failures, failures


def _wait_ping(lab: Any, a: str, b: str, ip: str, tries: int = 10) -> bool:
    return lab.host(a).run(f"for i in $(seq {tries}); do ping -c1 -W1 {ip} && exit 0; done; exit 1").rc == 0


@pytest.mark.slow_scenario
def test_lost_key_pair_is_remade_and_learned_by_every_peer_in_one_run(lab: Any, iface: str) -> None:
    inv = inventory(lab)
    victim = next(n for n in reversed(inv.linux_hosts()) if not inv.hosts[n].sleep.sleeps)
    node = lab.host(victim)
    old = node.check_output(f"sudo cat /etc/wireguard/{iface}.pub")
    node.check_output(f"sudo rm -f /etc/wireguard/{iface}.key /etc/wireguard/{iface}.pub")
    inv_py = cycle.pyinfra_inventory_for(lab.inventory)
    first = cycle.deploy(inv_py)
    assert first.ok, first.stderr_tail
    new = node.check_output(f"sudo cat /etc/wireguard/{iface}.pub")
    assert new and new != old
    for other in inv.linux_hosts():
        if other != victim:
            config = lab.host(other).check_output(f"sudo cat /etc/wireguard/{iface}.conf")
            assert old not in config
            assert (f"PublicKey = {new}" in config) is (victim in expected_peers(inv, other))
            assert _wait_ping(lab, other, victim, str(inv.hosts[victim].overlay_ip))
    second = cycle.deploy(inv_py)
    assert second.ok and second.totals.get("success", 0) == 0, second.changed


@pytest.mark.slow_scenario
def test_removed_host_leaves_every_peer(lab: Any, tmp_path: Path, iface: str) -> None:
    inv = inventory(lab)
    # a plain worker: nothing else in the inventory refers to it
    plain = [n for n in reversed(inv.linux_hosts())
             if not inv.hosts[n].serves and not {"k3s_server", "gateway"} & set(inv.hosts[n].roles)
             and n != inv.overlay.hub]
    if not plain:
        pytest.skip("no plain worker in this inventory to remove")
    gone = plain[0]
    data = yaml.safe_load(lab.inventory.read_text())
    del data["hosts"][gone]
    smaller = tmp_path / lab.inventory.name
    smaller.write_text(yaml.safe_dump(data, sort_keys=False))
    kept = [n for n in inv.linux_hosts() if n != gone]
    started = {n: wg_started(lab, n, iface) for n in kept}
    run = cycle.deploy(cycle.pyinfra_inventory_for(smaller))
    try:
        assert run.ok, run.stderr_tail
        address = f"{inv.hosts[gone].address}:{inv.overlay.port}"
        for other in kept:
            assert address not in lab.host(other).check_output(f"sudo wg show {iface} endpoints")
            assert wg_started(lab, other, iface) == started[other], f"{other}: a peer-only change restarted {iface}"
            assert running_key(lab, other, iface) == disk_key(lab, other, iface), \
                f"{other}: syncconf dropped the private key"
    finally:
        back = cycle.deploy(cycle.pyinfra_inventory_for(lab.inventory))
        assert back.ok, back.stderr_tail
    for other in inv.linux_hosts():
        if other != gone:
            assert _wait_ping(lab, other, gone, str(inv.hosts[gone].overlay_ip))


def wg_started(lab: Any, name: str, iface: str) -> str:
    """When wg-quick@ last started on ``name`` (unchanged = the tunnels stayed up)."""
    return lab.host(name).check_output(f"systemctl show -p ActiveEnterTimestampMonotonic --value wg-quick@{iface}")


def running_key(lab: Any, name: str, iface: str) -> str:
    return lab.host(name).check_output(f"sudo wg show {iface} public-key")


def disk_key(lab: Any, name: str, iface: str) -> str:
    return lab.host(name).check_output(f"sudo cat /etc/wireguard/{iface}.pub")


@pytest.mark.slow_scenario
def test_a_sleeping_host_does_not_break_the_overlay(lab: Any, tmp_path: Path, iface: str) -> None:
    """Issue 9 item 2: sleeper asleep, a setting changed, deploy: every awake host
    converges and keeps the sleeper's last known key (tunnels not restarted), the
    sleeper is reported; woken, the next run converges it too."""
    if not lab.local:
        pytest.skip("needs the lab's power control")
    inv = inventory(lab)
    sleeper = next((n for n in inv.linux_hosts() if inv.hosts[n].sleep.sleeps), None)
    if sleeper is None:
        pytest.skip("no sleeping host in this inventory")
    awake = [n for n in inv.linux_hosts() if n != sleeper]
    record = load_record(lab_root())
    assert record is not None
    machine = record.machines[sleeper]
    key = lab.host(sleeper).check_output(f"sudo cat /etc/wireguard/{iface}.pub")
    data = yaml.safe_load(lab.inventory.read_text())
    port = int({**group_defaults(), **inv.settings}["node_exporter_port"]) + 1
    data.setdefault("settings", {})["node_exporter_port"] = port
    changed = tmp_path / lab.inventory.name
    changed.write_text(yaml.safe_dump(data, sort_keys=False))
    wanted = load_inventory(changed, group_defaults())
    started = {n: wg_started(lab, n, iface) for n in awake}

    power_cli.sleep(record, machine)
    try:  # whatever fails, the lab goes back to its own inventory (later checks read it)
        try:
            run = cycle.deploy(cycle.pyinfra_inventory_for(changed), timeout=600)
            said = run.output  # the lines hearth prints, beside the JSON results
            assert run.failed_hosts == [sleeper], said[-3000:]
            assert f"hearth: {sleeper} is asleep: not configured this run" in said, said[-3000:]
            for name in awake:
                node = lab.host(name)
                stamp = firewall_configs.ruleset(wanted, name).context["stamp"]
                assert stamp in node.check_output("sudo nft list table inet hearth | head -n 3"), \
                    f"{name} not converged"
                if sleeper in overlay_configs.peer_names(inv, name):  # hub: spokes peer the hub only
                    assert key in node.check_output(f"sudo wg show {iface} peers"), \
                        f"{name} lost {sleeper}'s key"
                assert wg_started(lab, name, iface) == started[name], f"{name}: {iface} restarted"
                assert running_key(lab, name, iface) == disk_key(lab, name, iface)
        finally:
            power_cli.wake(record, machine)

        second = cycle.deploy(cycle.pyinfra_inventory_for(changed))
        assert second.ok, second.stderr_tail
        stamp = firewall_configs.ruleset(wanted, sleeper).context["stamp"]
        assert stamp in lab.host(sleeper).check_output("sudo nft list table inet hearth | head -n 3")
        for name in awake:
            assert _wait_ping(lab, name, sleeper, str(inv.hosts[sleeper].overlay_ip))
    finally:
        back = cycle.deploy(cycle.pyinfra_inventory_for(lab.inventory))
        assert back.ok, back.stderr_tail
