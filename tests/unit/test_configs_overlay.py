"""WireGuard configs rendered from the example inventory: peers, keys, topology."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hearth.configs import overlay
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory

LINUX = ["k3master", "phone1", "phone2", "phone3", "gpu-1", "eyes", "hands", "spark"]
WINDOWS = ["mouth", "windows-gpu"]


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(Path(__file__).resolve().parents[2] / "inventory" / "example.yml", group_defaults())


def sections(text: str) -> list[dict[str, str]]:
    """[Interface] then each [Peer], as dicts (comments dropped)."""
    out: list[dict[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            out.append({"section": line})
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[-1][key.strip()] = value.strip()
    return out


def keys() -> dict[str, str]:
    return {name: f"KEY-{name}" for name in LINUX + WINDOWS}


def test_mesh_has_every_other_host_windows_included(inv: Inventory) -> None:
    text = overlay.wg_config(inv, "eyes", keys()).render()
    interface, *peers = sections(text)
    assert interface["Address"] == "10.77.0.40/24"
    assert interface["ListenPort"] == "51820"
    assert {p["PublicKey"] for p in peers} == {f"KEY-{n}" for n in LINUX + WINDOWS if n != "eyes"}
    hands = next(p for p in peers if p["PublicKey"] == "KEY-hands")
    assert hands["Endpoint"] == "192.168.1.60:51820"
    assert hands["AllowedIPs"] == "10.77.0.60/32"
    # The gateway's Windows upstreams are addressed by overlay IP: each Windows box is a peer.
    gpu = next(p for p in peers if p["PublicKey"] == "KEY-windows-gpu")
    assert (gpu["Endpoint"], gpu["AllowedIPs"]) == ("192.168.1.30:51820", "10.77.0.30/32")


def test_windows_host_behind_ssh_tunnel_is_not_a_peer(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["hosts"]["windows-gpu"].update(windows={"reach": "ssh_tunnel"},
                                                                                    ssh_user="gamer")),
                         group_defaults())
    text = overlay.wg_config(inv, "eyes", keys()).render()
    assert "KEY-windows-gpu" not in text and "192.168.1.30" not in text
    assert "KEY-mouth" in text


def test_private_key_is_never_in_the_config(inv: Inventory) -> None:
    cf = overlay.wg_config(inv, "eyes", keys())
    text = cf.render()
    assert "PrivateKey" not in text
    assert "PostUp = wg set %i private-key /etc/wireguard/wg0.key" in text
    assert cf.mode == "0600"


def test_missing_key_renders_a_marked_placeholder(inv: Inventory) -> None:
    text = overlay.wg_config(inv, "eyes", {}).render()
    assert "<public key of hands: read from the host at deploy>" in text


def test_hub_topology(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["overlay"].update(topology="hub", hub="k3master")),
                         group_defaults())
    _, *spoke_peers = sections(overlay.wg_config(inv, "eyes", keys()).render())
    assert len(spoke_peers) == 1
    assert spoke_peers[0]["PublicKey"] == "KEY-k3master"
    assert spoke_peers[0]["AllowedIPs"] == "10.77.0.0/24"  # everything via the hub
    _, *hub_peers = sections(overlay.wg_config(inv, "k3master", keys()).render())
    assert {p["AllowedIPs"] for p in hub_peers} == {"10.77.0.21/32", "10.77.0.22/32", "10.77.0.23/32",
                                                    "10.77.0.41/32", "10.77.0.40/32", "10.77.0.60/32",
                                                    "10.77.0.70/32", "10.77.0.50/32", "10.77.0.30/32"}


def test_adding_a_host_adds_it_to_every_peer(write_inventory: Callable[..., Path]) -> None:
    def add(d: dict) -> None:
        d["hosts"]["phone4"] = {"address": "192.168.1.24", "overlay_ip": "10.77.0.24", "roles": ["k3s_agent"]}

    inv = load_inventory(write_inventory(add), group_defaults())
    for name in LINUX:
        assert "Endpoint = 192.168.1.24:51820" in overlay.wg_config(inv, name, keys()).render()


def test_userspace_dropin_only_without_kernel_support(inv: Inventory) -> None:
    with_kernel = [f.dest for f in overlay.host_files(inv, "eyes", {"wireguard_kernel": True})]
    without = {f.dest: f.render() for f in overlay.host_files(inv, "eyes", {"wireguard_kernel": False})}
    assert overlay.USERSPACE_DROPIN not in with_kernel
    assert "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go" in without[overlay.USERSPACE_DROPIN]


def test_existing_overlay_writes_nothing(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["overlay"].update(kind="existing", interface="tailscale0")),
                         group_defaults())
    assert overlay.host_files(inv, "eyes") == []


def test_unmanaged_phones_join_with_their_inventory_key(inv: Inventory) -> None:
    """postmarketOS phones (managed: false) are peers with the key the inventory gives;
    hearth writes no file for them (it never connects there)."""
    text = {f.dest: f.render() for f in overlay.host_files(inv, "eyes")}[overlay.config_path(inv)]
    phone = next(p for p in sections(text)[1:] if p.get("Endpoint") == "192.168.1.21:51820")
    assert phone["PublicKey"] == inv.hosts["phone1"].wireguard_public_key
    assert "phone1" in overlay.members(inv)


def test_unmanaged_host_without_key_is_no_peer(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["hosts"]["phone1"].pop("wireguard_public_key")),
                         group_defaults())
    assert "phone1" not in overlay.members(inv)
    assert "192.168.1.21" not in overlay.wg_config(inv, "eyes", keys()).render()
    assert overlay.host_files(inv, "phone1") == []


def test_peer_keys_are_read_back_from_a_rendered_config(inv: Inventory) -> None:
    text = overlay.wg_config(inv, "eyes", keys()).render()
    assert overlay.peer_keys_in(text) == {n: f"KEY-{n}" for n in LINUX + WINDOWS if n != "eyes"}
    assert overlay.peer_keys_in(overlay.wg_config(inv, "eyes", {}).render()) == {}  # placeholders are no keys


def test_unknown_peers_are_left_out_at_deploy(inv: Inventory) -> None:
    known = {n: k for n, k in keys().items() if n != "hands"}
    text = overlay.wg_config(inv, "eyes", known, omit_unknown=True).render()
    assert "192.168.1.60" not in text and "<public key" not in text
    assert "KEY-spark" in text


def test_peer_only_changes_keep_the_interface_section(inv: Inventory, write_inventory: Callable[..., Path]) -> None:
    before = overlay.wg_config(inv, "eyes", keys()).render()
    fewer = overlay.wg_config(inv, "eyes", {n: k for n, k in keys().items() if n != "hands"}, True).render()
    assert fewer != before
    assert overlay.interface_section(fewer) == overlay.interface_section(before)  # -> wg syncconf
    moved = load_inventory(write_inventory(lambda d: d["overlay"].update(port=51999)), group_defaults())
    other = overlay.wg_config(moved, "eyes", keys()).render()
    assert overlay.interface_section(other) != overlay.interface_section(before)  # -> restart
