"""Lab: the node baseline on every machine (testinfra over SSH), and idempotence."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import base as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle

pytestmark = pytest.mark.lab


def test_second_deploy_changes_nothing(lab: Any) -> None:
    if lab.result is None:
        pytest.skip("no deploy in this session (--hearth-deploy not given)")
    assert lab.result.converge.ok
    assert lab.result.noop.ok
    assert lab.result.noop.totals.get("success", 0) == 0, lab.result.noop.changed


def test_hostname_is_the_inventory_name(host: Any, machine: str) -> None:
    assert host.check_output("hostname") == machine


def test_sshd_refuses_passwords(lab: Any, host: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    dropin = host.file(configs.SSHD_DROPIN)
    assert dropin.exists and dropin.user == "root" and dropin.mode == 0o644
    effective = host.check_output("sudo sshd -T").splitlines()
    assert "passwordauthentication no" in effective
    assert "kbdinteractiveauthentication no" in effective
    assert f"permitrootlogin {'prohibit-password' if inv.ssh.root_login else 'no'}" in effective
    assert host.service("ssh").is_running


def test_automation_user_has_the_inventory_key_and_validated_sudoers(lab: Any, host: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    sudoers = host.file(configs.SUDOERS)
    assert sudoers.exists and sudoers.mode == 0o440 and sudoers.user == "root"
    assert host.run(f"sudo visudo -cf {configs.SUDOERS}").rc == 0
    assert host.check_output("sudo -n true") == ""
    if inv.ssh.key:
        public = Path(f"{inv.ssh.key}.pub").read_text().split()[1]
        keys = host.file(f"/home/{inv.ssh.user}/.ssh/authorized_keys")
        assert public in keys.content_string


def test_time_sync_enabled(host: Any) -> None:
    chrony = host.service("chrony")
    assert chrony.is_enabled
    if host.run("systemd-detect-virt --container").rc != 0:  # a real machine keeps its own clock
        assert chrony.is_running


def test_cluster_sysctls(host: Any) -> None:
    assert host.file(configs.SYSCTL).contains("net.ipv4.ip_forward = 1")
    assert not host.file(configs.SYSCTL).contains("ipv6")  # nothing hearth runs routes IPv6
    assert host.sysctl("net.ipv4.ip_forward") == 1
    if host.file("/proc/sys/net/bridge").exists:
        assert host.sysctl("net.bridge.bridge-nf-call-iptables") == 1


def test_k3s_node_with_its_own_kernel_loads_br_netfilter(lab: Any, host: Any, machine: str) -> None:
    """A k3s node that is not a container loads br_netfilter from base, now and at boot, so its
    bridge sysctls are in the first deploy's file (k3s loading it later made the re-run change)."""
    inv = load_inventory(lab.inventory, group_defaults())
    if not inv.hosts[machine].in_k3s:
        pytest.skip(f"{machine} is no k3s node in {lab.inventory.name}")
    if host.run("systemd-detect-virt --container").rc == 0:
        pytest.skip(f"{machine} is a container: the module and its sysctls are the hosting machine's")
    assert host.file(configs.K3S_MODULES).contains(f"^{configs.BRIDGE_MODULE}$")
    assert host.run(f"grep -q '^{configs.BRIDGE_MODULE} ' /proc/modules").rc == 0
    assert host.file(configs.SYSCTL).contains("net.bridge.bridge-nf-call-iptables = 1")
    assert host.sysctl("net.bridge.bridge-nf-call-iptables") == 1


def test_base_packages(host: Any) -> None:
    for package in group_defaults()["base_packages"]:
        assert host.package(package).is_installed, package


def test_no_rollback_copy_left_after_a_good_change(host: Any) -> None:
    assert not host.file(f"{configs.SSHD_DROPIN}.hearth-prev").exists


def test_sshd_change_that_locks_out_new_logins_is_rolled_back(lab: Any, tmp_path: Path) -> None:
    """`sshd -t` accepts a drop-in that denies the automation user; the running session
    would survive the reload. The deploy proves a NEW login, fails, and puts the old file back."""
    inv = load_inventory(lab.inventory, group_defaults())
    name = inv.linux_hosts()[-1]
    node = lab.host(name)
    user = inv.hosts[name].ssh_user or inv.ssh.user
    good = configs.sshd(inv, name).render()
    locked = good + f"DenyUsers {user}\n"
    deploy = tmp_path / "lockout.py"
    deploy.write_text(
        "from hearth.operations import ssh\n"
        f"ssh.dropin('sshd drop-in that denies the deploy user', content={locked!r}, dest={configs.SSHD_DROPIN!r})\n"
    )
    run = cycle.run_pyinfra(cycle.pyinfra_inventory_for(lab.inventory), deploy, limit=name, timeout=300)
    said = run.stdout + run.stderr
    assert run.returncode != 0, said[-2000:]
    assert "a new SSH login fails after the sshd change" in said, said[-2000:]
    on_disk = node.check_output(f"sudo sha256sum {configs.SSHD_DROPIN}").split()[0]
    assert on_disk == hashlib.sha256(good.encode()).hexdigest()
    assert "denyusers" not in node.check_output("sudo sshd -T").lower()
    spec = lab.spec
    fresh = ["ssh", "-i", str(spec.ssh_key), "-p", str(spec.ssh_port), "-o", f"UserKnownHostsFile={spec.known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ControlPath=none",
             f"{spec.ssh_user}@{spec.machine(name).address}", "true"]
    assert subprocess.run(fresh, capture_output=True, timeout=30).returncode == 0
