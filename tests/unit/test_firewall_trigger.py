"""The CUDA recovery trigger's port is the gateway host's alone (issue 11 item 4).

Rendered from the example (gateway on k3master, triggers on gpu-1, eyes and hands)
and from a copy where the gateway runs on a triggerable GPU host itself: the trigger
port accepts the gateway host's overlay address only (not the overlay CIDR, not the
pods of a k3s node), and the gateway host forwards nothing to another host's trigger
(a pod there is masqueraded behind the gateway's own address).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import firewall, recover_cuda
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from tests.unit.nft_check import nft_check

CAN_CHECK = shutil.which("nft") is not None and shutil.which("unshare") is not None and os.geteuid() == 0
PORT = recover_cuda.PORT


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(Path(__file__).resolve().parents[2] / "inventory" / "example.yml", group_defaults())


def port_rules(text: str, port: int) -> list[str]:
    """The input chain's rules for ``port`` (the output chain lets the gateway out to it)."""
    inbound = text[text.index("chain input"):text.index("chain forward")]
    return [line.strip() for line in inbound.splitlines() if re.search(rf"\btcp dport {port} accept\b", line)]


def test_the_trigger_accepts_the_gateway_host_alone(inv: Inventory) -> None:
    gateway = inv.hosts[inv.gateway.host].overlay_ip  # type: ignore[union-attr]
    triggers = [n for n in inv.linux_hosts() if recover_cuda.triggerable(inv, n)]
    assert triggers == ["gpu-1", "eyes", "hands"]
    for name in triggers:
        rules = port_rules(firewall.ruleset(inv, name).render(), PORT)
        assert rules == [f'iifname "wg0" ip saddr {gateway}/32 tcp dport {PORT} accept '
                         f'comment "CUDA recovery trigger: the gateway host k3master only"'], (name, rules)
    assert all(port != PORT for _, port, _ in firewall.service_ports(inv, "eyes"))  # not open to the overlay


def test_no_trigger_no_rule(inv: Inventory) -> None:
    for name in ("spark", "k3master", "pi-1"):  # a terminal route's host, the gateway host, no GPU
        if name in inv.hosts:
            text = firewall.ruleset(inv, name).render()
            assert port_rules(text, PORT) == [], name


def test_pods_on_a_trigger_node_are_not_let_through(inv: Inventory) -> None:
    assert firewall.k3s_node(inv, "eyes")
    rules = [r for r in firewall.rules(inv, "eyes") if r.port == PORT]
    assert len(rules) == 1 and rules[0].interfaces == ("wg0",)
    pods = [r for r in firewall.rules(inv, "eyes") if r.interfaces == firewall.POD_INTERFACES]
    assert pods and all(r.port != PORT for r in pods)


def test_the_gateway_host_forwards_nothing_to_a_trigger(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "k3master").render()
    addresses = ", ".join(str(inv.hosts[n].overlay_ip) for n in ("gpu-1", "eyes", "hands"))
    drop = f"ip daddr {{ {addresses} }} tcp dport {PORT} drop"
    assert drop in text
    forward = text[text.index("chain forward"):]
    assert forward.index(drop) < forward.index('iifname { "wg0", "cni0"')  # before the overlay/pods accept
    for name in ("eyes", "spark"):
        assert f"dport {PORT} drop" not in firewall.ruleset(inv, name).render()


def test_a_gateway_on_a_trigger_host(write_inventory: Callable[..., Path]) -> None:
    """The gateway on eyes: its own trigger is reached over loopback (accepted first),
    the rule names eyes' overlay address, and eyes forwards nothing to the others' triggers."""
    def change(data: dict[str, Any]) -> None:
        data["gateway"]["host"] = "eyes"
        data["hosts"]["k3master"]["roles"].remove("gateway")
        data["hosts"]["eyes"]["roles"].append("gateway")

    moved = load_inventory(write_inventory(change), group_defaults())
    text = firewall.ruleset(moved, "eyes").render()
    eyes = moved.hosts["eyes"].overlay_ip
    assert port_rules(text, PORT)[0].startswith(f'iifname "wg0" ip saddr {eyes}/32 tcp dport {PORT} accept')
    assert text.index('iif "lo" accept') < text.index(f"dport {PORT} accept")
    others = ", ".join(str(moved.hosts[n].overlay_ip) for n in ("gpu-1", "hands"))
    assert f"ip daddr {{ {others} }} tcp dport {PORT} drop" in text
    assert port_rules(firewall.ruleset(moved, "hands").render(), PORT) == [
        f'iifname "wg0" ip saddr {eyes}/32 tcp dport {PORT} accept '
        'comment "CUDA recovery trigger: the gateway host eyes only"']


@pytest.mark.skipif(not CAN_CHECK, reason="nft -c in a network namespace needs root, nft and unshare")
@pytest.mark.parametrize("name", ["eyes", "k3master"])
def test_rulesets_pass_the_kernels_check(inv: Inventory, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.nft"
    path.write_text(firewall.ruleset(inv, name).render())
    check = nft_check(path)
    assert check.returncode == 0, check.stderr
