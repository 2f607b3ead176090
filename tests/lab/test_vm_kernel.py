"""Kernel-level cases only a VM shows (it has its own kernel; a container shares the host's).

* the overlay uses kernel WireGuard where the module exists (a VM: Debian's kernel
  has it) and wireguard-go only where it does not (a container here): the role's
  ``KernelWireGuard`` fact decides, and the machine shows which it got;
* the cluster sysctls are the running kernel's values, all of them (a container
  can only set its own network namespace's ``net.*``).
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.configs import base as base_configs
from hearth.configs import overlay as overlay_configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab.harness import Lab

pytestmark = pytest.mark.lab


def _kind(lab: Lab, machine: str) -> str:
    if not lab.local:
        pytest.skip("machine kinds are the local lab's")
    return lab.spec.machine(machine).kind


def test_overlay_uses_kernel_wireguard_exactly_where_the_kernel_has_it(lab: Lab, host: Any, machine: str) -> None:
    kind = _kind(lab, machine)
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.overlay.kind != "wireguard":
        pytest.skip("overlay.kind is not wireguard")
    iface = inv.overlay.interface
    details = host.check_output(f"ip -d link show {iface}")
    dropin = host.file(overlay_configs.userspace_dropin().dest)
    module = host.file("/sys/module/wireguard").exists
    if kind == "vm":
        assert module, "a VM boots Debian's kernel, which has the wireguard module"
        assert "wireguard" in details.split("\n", 2)[-1], details  # the kernel's link type
        assert not dropin.exists
        assert host.run("pgrep -x wireguard-go").rc != 0
    else:
        assert not module and "tun" in details, details  # the host kernel here has no WireGuard
        assert dropin.exists
        assert host.run("pgrep -x wireguard-go").rc == 0


def test_cluster_sysctls_are_the_running_kernels(lab: Lab, host: Any, machine: str) -> None:
    if _kind(lab, machine) != "vm":
        pytest.skip("a container's kernel is the host's; its net.* sysctls are checked by test_base")
    bridge_nf = host.file("/proc/sys/net/bridge").exists
    for key, value in base_configs.sysctls(bridge_nf).items():
        assert host.sysctl(key) == value, key
    assert host.run("systemd-detect-virt --container").rc != 0  # not a container: its own kernel
