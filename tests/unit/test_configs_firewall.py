"""nftables rulesets rendered from the example inventory: who may reach which port."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import firewall
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, InventoryError, load_inventory
from tests.unit.nft_check import nft_check

CAN_CHECK = shutil.which("nft") is not None and shutil.which("unshare") is not None and os.geteuid() == 0


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(Path(__file__).resolve().parents[2] / "inventory" / "example.yml", group_defaults())


def accepts(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().endswith('"') and " accept " in line]


def rule_for(text: str, proto: str, port: int) -> list[str]:
    return [r for r in accepts(text) if re.search(rf"\b{proto} dport {port} accept", r)]


def test_eyes_opens_vllm_only_to_the_overlay(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "eyes").render()
    vllm, from_pods = rule_for(text, "tcp", 8000)
    assert vllm.startswith('iifname "wg0" ip saddr 10.77.0.0/24 ')
    assert from_pods.startswith('iifname { "cni0", "flannel.1" } ip saddr 10.42.0.0/16 ')  # its own pods
    assert "192.168.1." not in vllm + from_pods
    assert rule_for(text, "tcp", 11434) == []  # eyes serves vLLM, not Ollama
    assert rule_for(text, "tcp", 6443) == []  # and is no k3s server
    assert rule_for(text, "tcp", 4000) == []  # nor the gateway


def test_ssh_is_the_first_rule_from_admin_lan_and_overlay(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "eyes").render()
    first = accepts(text)[0]
    assert first == 'ip saddr { 192.168.1.0/24, 10.77.0.0/24 } tcp dport 22 accept comment "ssh"'


def test_default_drop_with_established_and_loopback(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "eyes").render()
    assert "type filter hook input priority filter; policy drop;" in text
    assert "ct state established,related accept" in text
    assert 'iif "lo" accept' in text
    assert text.index("ct state established") < text.index("dport 22")


def test_control_plane_ports(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "k3master").render()
    assert rule_for(text, "tcp", 6443)[0].startswith('iifname "wg0" ip saddr 10.77.0.0/24')
    assert rule_for(text, "tcp", 4000)[0].startswith('iifname "wg0" ip saddr 10.77.0.0/24')
    assert rule_for(text, "udp", 8472)[0].startswith('iifname "wg0" ip saddr 10.77.0.0/24')
    assert rule_for(text, "udp", 51820) == ['ip saddr 192.168.1.0/24 udp dport 51820 accept comment "wireguard"']
    assert rule_for(text, "tcp", 9100)  # node exporter (group_data default)


def test_service_ports_are_exactly_what_the_roles_open(inv: Inventory) -> None:
    assert {(p, n) for p, n, _ in firewall.service_ports(inv, "hands")} == {
        ("tcp", 9100), ("tcp", 10250), ("udp", 8472), ("tcp", 8000),  # not 4101: the gateway host only
    }
    assert {(p, n) for p, n, _ in firewall.service_ports(inv, "k3master")} == {
        ("tcp", 9100), ("tcp", 6443), ("tcp", 10250), ("udp", 8472), ("tcp", 4000),
    }


def test_ssh_from_a_narrower_admin_cidr(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["lan"].update(admin_cidr="192.168.1.128/28")), group_defaults())
    text = firewall.ruleset(inv, "eyes").render()
    ssh = 'ip saddr { 192.168.1.128/28, 10.77.0.0/24 } tcp dport 22 accept comment "ssh"'
    assert rule_for(text, "tcp", 22) == [ssh]
    assert rule_for(text, "udp", 51820)[0].startswith("ip saddr 192.168.1.0/24 ")


def test_node_exporter_port_follows_settings(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d.update(settings={"node_exporter_port": 9111})), group_defaults())
    text = firewall.ruleset(inv, "eyes").render()
    assert rule_for(text, "tcp", 9111) and not rule_for(text, "tcp", 9100)


def test_stamp_changes_with_the_rules(write_inventory: Callable[..., Path], inv: Inventory) -> None:
    other = load_inventory(write_inventory(lambda d: d["overlay"].update(port=51999)), group_defaults())
    stamp = firewall.ruleset(inv, "eyes").context["stamp"]
    assert stamp == firewall.ruleset(inv, "eyes").context["stamp"]
    assert stamp != firewall.ruleset(other, "eyes").context["stamp"]
    assert f'comment "{stamp}"' in firewall.ruleset(inv, "eyes").render()


def test_replaces_only_its_own_table(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "eyes").render()
    assert "flush ruleset" not in text  # k3s/flannel tables survive a re-apply
    assert text.index("delete table inet hearth") < text.index("table inet hearth {")


@pytest.mark.skipif(not CAN_CHECK, reason="needs root, nft and unshare (checks in a throwaway netns)")
@pytest.mark.parametrize("name", ["k3master", "eyes", "hands", "spark", "phone1"])
def test_kernel_accepts_every_ruleset(inv: Inventory, name: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.nft"
    path.write_text(firewall.ruleset(inv, name).render())
    proc = nft_check(path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not CAN_CHECK, reason="needs root, nft and unshare (checks in a throwaway netns)")
def test_kernel_check_rejects_a_broken_ruleset(inv: Inventory, tmp_path: Path) -> None:
    path = tmp_path / "rules.nft"
    path.write_text(firewall.ruleset(inv, "eyes").render().replace("dport 8000", "dport eight-thousand"))
    proc = nft_check(path)
    assert proc.returncode != 0


def test_windows_hosts_get_no_ruleset(inv: Inventory) -> None:
    assert firewall.host_files(inv, "mouth") == []


# --- the deploying session survives (issue 9 item 1b) ---------------------------------


@pytest.mark.parametrize("address", ["192.168.1.50", "10.77.0.3", "127.0.0.1", "::1", "::ffff:192.168.1.7"])
def test_deploy_from_an_allowed_address_is_kept(inv: Inventory, address: str) -> None:
    assert firewall.unprotected_source(inv, address) is None


@pytest.mark.parametrize("address", ["192.168.2.9", "203.0.113.5", "fd00:1::5", "::ffff:192.168.2.9"])
def test_deploy_from_outside_admin_cidr_is_refused_naming_address_and_setting(inv: Inventory, address: str) -> None:
    why = firewall.unprotected_source(inv, address)
    assert why is not None
    assert address.removeprefix("::ffff:") in why and "lan.admin_cidr" in why


def test_ipv6_admin_range_gets_an_ip6_ssh_rule(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["lan"].update(admin_cidr=["192.168.1.0/24", "fd00:1::/64"])),
                         group_defaults())
    text = firewall.ruleset(inv, "eyes").render()
    assert rule_for(text, "tcp", 22) == [
        'ip saddr { 192.168.1.0/24, 10.77.0.0/24 } tcp dport 22 accept comment "ssh"',
        'ip6 saddr fd00:1::/64 tcp dport 22 accept comment "ssh"',
    ]
    assert firewall.unprotected_source(inv, "fd00:1::5") is None
    assert firewall.unprotected_source(inv, "fd00:2::5") is not None


def test_admin_cidr_rejects_garbage(write_inventory: Callable[..., Path]) -> None:
    with pytest.raises(InventoryError, match=r"lan\.admin_cidr"):
        load_inventory(write_inventory(lambda d: d["lan"].update(admin_cidr="192.168.1.0/33")), group_defaults())


# --- coexistence and k3s (issue 9 item 4, issue 15 item 5) ----------------------------


def test_own_unit_deletes_only_hearths_table() -> None:
    text = firewall.unit().render()
    assert f"ExecStart=/usr/sbin/nft -f {firewall.RULESET}" in text
    assert "ExecStop=-/usr/sbin/nft delete table inet hearth" in text
    assert not [line for line in text.splitlines() if "flush" in line and not line.startswith("#")]
    assert "WantedBy=sysinit.target" in text and "Before=network-pre.target" in text


def test_pods_reach_every_service_of_their_node(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "k3master").render()
    for port in (6443, 10250, 4000, 9100):  # API, kubelet, the gateway, the exporter
        from_pods = [r for r in rule_for(text, "tcp", port) if "10.42.0.0/16" in r]
        assert from_pods == [f'iifname {{ "cni0", "flannel.1" }} ip saddr 10.42.0.0/16 tcp dport {port} accept '
                             f'comment "{dict((p, w) for _, p, w in firewall.service_ports(inv, "k3master"))[port]}'
                             f' from pods"']


def test_forward_chain_closes_published_ports_and_pod_ranges(inv: Inventory) -> None:
    text = firewall.ruleset(inv, "k3master").render()
    chain = text[text.index("chain forward"):]
    assert "type filter hook forward priority filter; policy accept;" in chain
    trusted = chain.index('iifname { "wg0", "cni0", "flannel.1", "docker0" } accept')
    assert trusted < chain.index("ct status dnat drop") < chain.index("ip daddr { 10.42.0.0/16, 10.43.0.0/16 } drop")
    assert chain.index("ct state established,related accept") < trusted


def test_no_pod_ranges_without_k3s(write_inventory: Callable[..., Path]) -> None:
    def drop_k3s(d: dict) -> None:
        del d["k3s"]
        for h in d["hosts"].values():
            h["roles"] = [r for r in h.get("roles", []) if not r.startswith("k3s")]
    inv = load_inventory(write_inventory(drop_k3s), group_defaults())
    text = firewall.ruleset(inv, "eyes").render()
    assert "10.42." not in text and "ct status dnat drop" in text
    assert rule_for(text, "udp", 8472) == [] and rule_for(text, "tcp", 10250) == []


def test_stamp_covers_the_template(inv: Inventory) -> None:
    cf = firewall.ruleset(inv, "eyes")
    text = cf.render()
    unstamped = text.replace(cf.context["stamp"], "")
    assert unstamped != text
    assert cf.context["stamp"] == f"hearth {hashlib.sha256(unstamped.encode()).hexdigest()[:16]}"


def _with_backend(write_inventory: Callable[..., Path], backend: str, port: int = 51820) -> Any:
    """An inventory with flannel's backend set and the overlay on ``port``."""

    def change(d: dict[str, Any]) -> None:
        d["overlay"]["port"] = port
        d["k3s"]["flannel_backend"] = backend

    return write_inventory(change)


@pytest.mark.parametrize("port", [51820, 51821])
def test_flannel_wireguard_native_on_the_overlay_port_is_refused(
        write_inventory: Callable[..., Path], port: int) -> None:
    with pytest.raises(InventoryError) as err:
        load_inventory(_with_backend(write_inventory, "wireguard-native", port), group_defaults())
    assert any("k3s.flannel_backend" in line and "wireguard-native" in line and str(port) in line
               for line in err.value.lines)


def test_flannel_wireguard_native_elsewhere_opens_its_ports_on_the_overlay(
        write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(_with_backend(write_inventory, "wireguard-native", port=51999), group_defaults())
    text = firewall.ruleset(inv, "eyes").render()
    assert rule_for(text, "udp", 8472) == []
    for port in (51820, 51821):
        assert rule_for(text, "udp", port)[0].startswith('iifname "wg0" ip saddr 10.77.0.0/24')


def test_lan_published_ports_are_opt_in(write_inventory: Callable[..., Path], inv: Inventory, tmp_path: Path) -> None:
    assert "proto-dst" not in firewall.ruleset(inv, "k3master").render()
    opened = load_inventory(write_inventory(lambda d: d.update(settings={"firewall_lan_published": [443, 80]})),
                            group_defaults())
    text = firewall.ruleset(opened, "k3master").render()
    rule = 'ip saddr 192.168.1.0/24 ct status dnat meta l4proto tcp ct original proto-dst { 80, 443 } accept'
    assert rule in text and text.index(rule) < text.index("ct status dnat drop")
    if CAN_CHECK:
        path = tmp_path / "rules.nft"
        path.write_text(text)
        proc = nft_check(path)
        assert proc.returncode == 0, proc.stderr
