"""Hosts hearth routes to but does not manage (issue 22 item 4): ``managed: false``.

No role and no SSH (never in a pyinfra group); their serves are upstreams: in the
gateway's policy, asked by the deploy's upstream report from the gateway host,
planned on the GPUs the inventory gives, reached on the overlay when the host is a
WireGuard peer (``wireguard_public_key``) and on its LAN address when it is not.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import firewall, overlay, unmanaged, upstreams
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import InventoryError, load_inventory
from hearth.inventory.groups import build_groups
from hearth.plan import plan_text
from tests.unit.nft_check import nft_check

KEY = "y0QwpyBc9hZshgVQ5gZxjBmeD2HaJAnV9sI8obJp/2s="


def _nas(key: str | None = None, engine: str = "lmstudio") -> Callable[[dict[str, Any]], None]:
    """A NAS with an NVIDIA card running LM Studio's server (engine openai, llama.cpp's
    llama-server, names its base_url itself) that hearth does not manage."""
    def change(data: dict[str, Any]) -> None:
        serve = copy.deepcopy(data["hosts"]["mouth"]["serves"][0])
        serve.update(name="phi-3.5-mini", engine=engine, model="phi-3.5-mini", port=8080, slots=1,
                     routes=["nas"])
        data["hosts"]["nas"] = {"address": "192.168.1.77", "overlay_ip": "10.77.0.77", "arch": "amd64",
                                "managed": False, "gpus": [{"model": "RTX 3090", "vram_gb": 24}],
                                "serves": [serve]}
        if key:
            data["hosts"]["nas"]["wireguard_public_key"] = key
    return change


def test_an_unmanaged_box_off_the_overlay_is_an_upstream_on_its_lan_address(
        write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(_nas())
    inv = load_inventory(path)
    assert unmanaged.lan_only(inv, "nas") and unmanaged.upstream_address(inv, "nas") == "192.168.1.77"
    # no role, no SSH: in no pyinfra group, no files, no overlay peer
    assert all("nas" not in [n for n, _ in entries] for entries in build_groups(inv, path).values())
    assert firewall.host_files(inv, "nas") == [] and overlay.host_files(inv, "nas") == []
    assert "nas" not in overlay.members(inv)
    assert "# nas" not in overlay.wg_config(inv, "k3master", {}).render()
    # the gateway routes to it, health-probes it like any upstream, on the LAN address
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    (up,) = [u for u in config.upstreams.values() if u.host == "nas"]
    assert up.base_url == "http://192.168.1.77:8080" and up.engine == "lmstudio"
    assert [config.upstreams[u].host for u in config.routes["nas"].upstreams] == ["nas"]
    # the deploy's upstream report asks it there, from the gateway host
    (check,) = [c for c in upstreams.checks(inv) if c.host == "nas"]
    assert check.base_url == "http://192.168.1.77:8080"
    text = plan_text(inv)
    assert ("routed to, not managed: nas at 192.168.1.77 (LAN, not on the overlay): "
            "phi-3.5-mini (lmstudio, port 8080)") in text
    assert "managed: false, not deployed" in next(ln for ln in text.splitlines() if ln.startswith("nas "))


def test_an_unmanaged_box_with_its_wireguard_key_is_reached_on_the_overlay(
        write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(_nas(KEY.replace("y0Q", "a1B"))))
    assert not unmanaged.lan_only(inv, "nas") and unmanaged.upstream_address(inv, "nas") == "10.77.0.77"
    assert "nas" in overlay.members(inv)
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    assert [u.base_url for u in config.upstreams.values() if u.host == "nas"] == ["http://10.77.0.77:8080"]
    assert "nas at 10.77.0.77 (overlay)" in plan_text(inv)


def test_managed_hosts_are_still_reached_on_the_overlay(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory())
    for name, host in inv.hosts.items():
        assert unmanaged.upstream_address(inv, name) == str(host.overlay_ip)


def test_llama_server_is_an_openai_upstream_at_the_base_url_the_inventory_gives(
        write_inventory: Callable[..., Path]) -> None:
    def llama(data: dict[str, Any]) -> None:
        _nas(engine="openai")(data)
        data["hosts"]["nas"]["serves"][0]["base_url"] = "http://192.168.1.77:8080/v1"

    inv = load_inventory(write_inventory(llama))
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    assert [u.base_url for u in config.upstreams.values() if u.host == "nas"] == ["http://192.168.1.77:8080/v1"]
    (check,) = [c for c in upstreams.checks(inv) if c.host == "nas"]
    assert check.base_url == "http://192.168.1.77:8080"


def test_the_plan_budgets_an_unmanaged_boxs_gpu(write_inventory: Callable[..., Path]) -> None:
    text = plan_text(load_inventory(write_inventory(_nas())))
    assert any("nas" in ln and "RTX 3090" in ln for ln in text.splitlines()), text


def _lan_nas(**extra: Any) -> Callable[[dict[str, Any]], None]:
    """The NAS reached over the LAN only: no overlay_ip, no WireGuard key."""
    def change(data: dict[str, Any]) -> None:
        _nas()(data)
        del data["hosts"]["nas"]["overlay_ip"]
        data["hosts"]["nas"].update(extra)
    return change


def _problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value.lines


def test_a_lan_only_box_needs_no_overlay_ip_and_everything_follows_its_reach(
        write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(_lan_nas(reach="lan")))
    assert inv.hosts["nas"].overlay_ip is None and unmanaged.reach(inv, "nas") == "lan"
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    assert [u.base_url for u in config.upstreams.values() if u.host == "nas"] == ["http://192.168.1.77:8080"]
    (check,) = [c for c in upstreams.checks(inv) if c.host == "nas"]
    assert check.base_url == "http://192.168.1.77:8080"
    text = plan_text(inv)
    assert "routed to, not managed: nas at 192.168.1.77 (LAN, not on the overlay)" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("nas "))
    assert row.split()[1:3] == ["192.168.1.77", "-"], row  # address, no overlay address
    assert "nas" not in overlay.members(inv)


def test_reach_lan_wins_over_a_wireguard_key(write_inventory: Callable[..., Path]) -> None:
    """A box on the overlay (its key given) whose server the gateway still asks on the LAN."""
    inv = load_inventory(write_inventory(_nas(KEY.replace("y0Q", "a1B"))))
    assert unmanaged.reach(inv, "nas") == "overlay"

    def lan(data: dict[str, Any]) -> None:
        _nas(KEY.replace("y0Q", "a1B"))(data)
        data["hosts"]["nas"]["reach"] = "lan"

    inv = load_inventory(write_inventory(lan))
    assert unmanaged.reach(inv, "nas") == "lan" and "nas" in overlay.members(inv)
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    assert [u.base_url for u in config.upstreams.values() if u.host == "nas"] == ["http://192.168.1.77:8080"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["hosts"]["eyes"].pop("overlay_ip"),
     "hosts.eyes.overlay_ip: required: hearth puts every host it manages on the overlay"),
    (lambda d: d["hosts"]["eyes"].update(reach="lan"), "hosts.eyes.reach: only for managed: false hosts"),
    (lambda d: (_nas()(d), d["hosts"]["nas"].update(reach="overlay")),
     "hosts.nas.reach: reach overlay needs the box's wireguard_public_key"),
    (_lan_nas(reach="overlay"), "hosts.nas.overlay_ip: required: reach overlay"),
    (_lan_nas(address="nas.home.arpa"), "hosts.nas.address: reach lan: 'nas.home.arpa' is not an IP address"),
    (_lan_nas(wireguard_public_key=KEY.replace("y0Q", "a1B")),
     "hosts.nas.overlay_ip: required: this host gives its wireguard_public_key"),
])
def test_reach_is_validated_with_file_line_and_key_path(
        write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None], expected: str) -> None:
    path = write_inventory(change)
    lines = _problems(path)
    assert any(line.startswith(f"{path}:") and expected in line for line in lines), lines


def test_a_lan_base_url_must_name_an_ip_address(write_inventory: Callable[..., Path]) -> None:
    def llama(data: dict[str, Any]) -> None:
        _lan_nas(reach="lan", serves=[{**data["hosts"]["mouth"]["serves"][0], "name": "phi", "model": "phi-3.5-mini",
                                       "engine": "openai", "port": 8080, "routes": ["nas"],
                                       "base_url": "http://nas.home.arpa:8080/v1"}])(data)
        for key in ("keep_alive",):
            data["hosts"]["nas"]["serves"][0].pop(key, None)

    lines = _problems(write_inventory(llama))
    assert any("hosts.nas.serves[0].base_url: reach lan: 'nas.home.arpa' is not an IP address" in ln
               for ln in lines), lines


def _egress_chain(text: str) -> list[str]:
    block = text.split("chain gateway_egress {", 1)[1].split("\n\t}", 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip()]


def test_the_gateway_host_lets_the_gateway_reach_exactly_each_upstream(
        write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    inv = load_inventory(write_inventory(_lan_nas(reach="lan")))
    text = firewall.ruleset(inv, "k3master").render()
    rules = _egress_chain(text)
    assert 'meta skuid "hearth-gateway" jump gateway_egress' in text
    nas = 'ip daddr 192.168.1.77 tcp dport 8080 accept comment "upstream nas (LAN, managed: false)"'
    assert nas in rules
    drop = next(i for i, r in enumerate(rules) if r.startswith("ip daddr {") and r.endswith(
        'reject with icmpx admin-prohibited comment "the gateway reaches on the LAN and the overlay only what the '
        'inventory names"'))
    assert "192.168.1.0/24" in rules[drop] and "10.77.0.0/24" in rules[drop]
    assert rules.index(nas) < drop
    (drop6,) = [r for r in rules if r.startswith("ip6 daddr {") and "admin-prohibited" in r]
    assert "fe80::/10" in drop6 and "fc00::/7" in drop6  # link-local and the LAN's unique-local range
    # every upstream the gateway's policy names, at its address and port, and nothing more on the LAN
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    for up in config.upstreams.values():
        addr, port = up.base_url.split("//")[1].split("/")[0].rsplit(":", 1)
        assert any(r.startswith(f"ip daddr {addr} tcp dport {port} accept") for r in rules), up.base_url
    lan = [r for r in rules[:drop] if "192.168.1." in r]
    assert lan == [nas, 'ip daddr 192.168.1.255 udp dport 9 accept comment "Wake-on-LAN magic packets"'], lan
    # only on the gateway host; the other hosts send what they send
    assert "chain output" not in firewall.ruleset(inv, "eyes").render()
    if shutil.which("nft") and shutil.which("unshare") and os.geteuid() == 0:
        path = tmp_path / "rules.nft"
        path.write_text(text)
        proc = nft_check(path)
        assert proc.returncode == 0, proc.stderr


def test_an_overlay_reached_box_is_allowed_on_the_overlay(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(_nas(KEY.replace("y0Q", "a1B"))))
    rules = _egress_chain(firewall.ruleset(inv, "k3master").render())
    assert 'ip daddr 10.77.0.77 tcp dport 8080 accept comment "upstream nas (overlay, managed: false)"' in rules
    assert not any("192.168.1.77" in r for r in rules)


def test_a_lan_openai_server_is_allowed_at_its_base_url(write_inventory: Callable[..., Path]) -> None:
    def llama(data: dict[str, Any]) -> None:
        _lan_nas(reach="lan")(data)
        data["hosts"]["nas"]["serves"][0].update(engine="openai", base_url="http://192.168.1.78:8081/v1")

    inv = load_inventory(write_inventory(llama))
    rules = _egress_chain(firewall.ruleset(inv, "k3master").render())
    assert 'ip daddr 192.168.1.78 tcp dport 8081 accept comment "upstream nas (LAN, managed: false)"' in rules
    assert not any("192.168.1.77" in r for r in rules)


def test_the_lab_builds_no_machine_for_a_box_it_does_not_manage() -> None:
    from hearth.lab.spec import load_spec

    repo = Path(__file__).resolve().parents[2]
    inv = load_inventory(repo / "inventory" / "lab.yml")
    lan_boxes = [n for n in inv.hosts if unmanaged.lan_only(inv, n)]
    assert lan_boxes and all(inv.hosts[n].overlay_ip is None for n in lan_boxes)  # tests/lab/test_unmanaged_lan.py
    machines = [m.name for m in load_spec(repo / "inventory" / "lab.yml").machines]
    assert machines == inv.linux_hosts() and not set(lan_boxes) & set(machines)
