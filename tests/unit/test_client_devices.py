"""Issue 22 item 1: client devices on the overlay (`hearth client add`), offline parts.

The lab test (tests/lab/test_client_devices.py) sends the real packets; here: keys,
the inventory edit, validation, what the gateway host renders, the CLI's outputs.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth import client_cli
from hearth.configs import firewall, overlay
from hearth.configs.client_devices import device_config
from hearth.inventory import InventoryError, load_inventory
from tests.unit.nft_check import nft_check

KEY_A = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="  # RFC 7748 6.1 Alice's public key, base64
KEY_B = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="  # RFC 7748 6.1 Bob's public key, base64


def _devices(cidr: str = "10.77.1.0/24", **devices: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d["client_devices"] = {"cidr": cidr, "devices": devices}
    return change


def _problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value.lines


def test_keypair_is_a_wireguard_key_pair() -> None:
    private, public = client_cli.keypair()
    raw = base64.b64decode(private)
    assert len(raw) == 32 and raw[0] & 7 == 0 and raw[31] & 128 == 0 and raw[31] & 64  # clamped
    assert private != public and len(base64.b64decode(public)) == 32
    assert client_cli.keypair()[0] != private
    if shutil.which("wg"):  # the reference: wireguard-tools' own derivation
        assert subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True,
                              check=True).stdout.strip() == public


def test_public_key_matches_rfc7748_vector() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    pub = X25519PrivateKey.from_private_bytes(alice).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    assert base64.b64encode(pub).decode() == KEY_A


def test_devices_render_on_the_gateway_host_only(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(_devices(laptop={"address": "10.77.1.2", "public_key": KEY_A},
                                                  phone={"address": "10.77.1.3", "public_key": KEY_B})))
    text = overlay.wg_config(inv, "k3master").render()
    assert "Address = 10.77.0.1/24, 10.77.1.1/24" in text
    block = text.split("# client device laptop", 1)[1].split("[Peer]", 1)[0]
    assert f"PublicKey = {KEY_A}" in block and "AllowedIPs = 10.77.1.2/32" in block
    assert "Endpoint" not in block and "PersistentKeepalive" not in block  # they roam
    assert "# client device phone" in text
    other = overlay.wg_config(inv, "phone1").render()
    assert "client device" not in other and "10.77.1." not in other
    rules = firewall.ruleset(inv, "k3master").render()
    assert 'iifname "wg0" ip saddr 10.77.1.0/24 tcp dport 4000 accept' in rules
    assert "hook forward" in rules and "ip saddr 10.77.1.0/24 drop" in rules
    assert "ip daddr 10.77.1.0/24 drop" in rules
    assert rules.count("10.77.1.0/24") == 3  # the gateway port and the forward chain, nothing else
    assert "10.77.1." not in firewall.ruleset(inv, "phone1").render()
    from hearth.plan import plan_text

    assert ("client devices (10.77.1.0/24, peers of k3master; the gateway port only): "
            "laptop 10.77.1.2, phone 10.77.1.3") in plan_text(inv)
    assert "in the cluster: http://hearth-gateway.default.svc:4000" in plan_text(inv)
    without = load_inventory(write_inventory())
    assert "client devices" not in firewall.ruleset(without, "k3master").render()


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed")
def test_gateway_host_ruleset_passes_nft_check(write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    inv = load_inventory(write_inventory(_devices(laptop={"address": "10.77.1.2", "public_key": KEY_A})))
    path = tmp_path / "rules.nft"
    path.write_text(firewall.ruleset(inv, "k3master").render())
    check = nft_check(path, unshare=False)
    if check.returncode != 0 and "Operation not permitted" in check.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert check.returncode == 0, check.stderr


def test_device_config_reaches_only_the_gateway(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(_devices(laptop={"address": "10.77.1.2", "public_key": KEY_A})))
    text = device_config(inv, "laptop", "PRIVATE", KEY_B)
    assert "PrivateKey = PRIVATE" in text and "Address = 10.77.1.2/32" in text
    assert f"PublicKey = {KEY_B}" in text
    assert "Endpoint = 192.168.1.10:51820" in text and "AllowedIPs = 10.77.0.1/32" in text
    assert "Endpoint = vpn.example.org:51820" in device_config(inv, "laptop", "P", KEY_B,
                                                               "vpn.example.org:51820")


@pytest.mark.parametrize(("change", "where", "what"), [
    (_devices("10.77.0.128/25"), "client_devices.cidr", "overlaps overlay.cidr"),
    (_devices("192.168.1.0/28"), "client_devices.cidr", "overlaps lan.cidr"),
    (_devices("10.42.7.0/24"), "client_devices.cidr", "overlaps k3s.cluster_cidr"),
    (_devices(laptop={"address": "10.77.2.2", "public_key": KEY_A}),
     "client_devices.devices.laptop.address", "not a host address"),
    (_devices(laptop={"address": "10.77.1.1", "public_key": KEY_A}),
     "client_devices.devices.laptop.address", "gateway host's own address"),
    (_devices(laptop={"address": "10.77.1.2", "public_key": KEY_A},
              phone={"address": "10.77.1.2", "public_key": KEY_B}),
     "client_devices.devices.phone.address", "already laptop's"),
    (_devices(laptop={"address": "10.77.1.2", "public_key": KEY_A},
              phone={"address": "10.77.1.3", "public_key": KEY_A}),
     "client_devices.devices.phone.public_key", "same key as laptop"),
    (_devices(k3master={"address": "10.77.1.2", "public_key": KEY_A}),
     "client_devices.devices.k3master", "also a host"),
    (_devices(laptop={"address": "10.77.1.2", "public_key": "not-a-key"}),
     "client_devices.devices.laptop.public_key", ""),
    (_devices(Laptop={"address": "10.77.1.2", "public_key": KEY_A}), "client_devices.devices", ""),
])
def test_bad_devices_are_refused_with_file_line_and_path(
        write_inventory: Callable[..., Path], change: Any, where: str, what: str) -> None:
    lines = _problems(write_inventory(change))
    assert any(f"{where}" in ln and what in ln and ":" in ln.split(where)[0] for ln in lines), lines


def test_devices_need_a_gateway(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        _devices(laptop={"address": "10.77.1.2", "public_key": KEY_A})(d)
        del d["gateway"]
        d.pop("clients", None)
        d.pop("model_aliases", None)
    lines = _problems(write_inventory(change))
    assert any("client_devices:" in ln and "gateway" in ln for ln in lines), lines


def test_add_to_text_keeps_comments_and_adds_under_devices() -> None:
    base = "name: x  # keep me\nhosts:\n  a: {}\n"
    once = client_cli.add_to_text(base, "laptop", "10.77.1.2", KEY_A, "10.77.1.0/24")
    assert once.startswith(base) and "# keep me" in once
    assert yaml.safe_load(once)["client_devices"] == {
        "cidr": "10.77.1.0/24", "devices": {"laptop": {"address": "10.77.1.2", "public_key": KEY_A}}}
    twice = client_cli.add_to_text(once + "settings: {}\n", "phone", "10.77.1.3", KEY_B, "ignored")
    data = yaml.safe_load(twice)
    assert list(data["client_devices"]["devices"]) == ["laptop", "phone"]
    assert data["settings"] == {} and data["client_devices"]["cidr"] == "10.77.1.0/24"
    empty = "client_devices:\n  cidr: 10.9.0.0/24\n  devices: {}\nother: 1\n"
    data = yaml.safe_load(client_cli.add_to_text(empty, "nas", "10.9.0.2", KEY_A, "x"))
    assert data["client_devices"]["devices"]["nas"]["address"] == "10.9.0.2" and data["other"] == 1


def _args(inventory: Path, name: str, out: Path, **extra: Any) -> argparse.Namespace:
    return argparse.Namespace(inventory=str(inventory), name=name, out=str(out), endpoint=None,
                              server_key=KEY_B, quiet=False, **extra)


def test_client_add_writes_config_qr_and_only_the_public_key(
        write_inventory: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_inventory()
    out = tmp_path / "devices"
    assert client_cli.cmd_add(_args(path, "laptop", out)) == 0
    inv = load_inventory(path)
    assert inv.client_devices is not None
    assert str(inv.client_devices.cidr) == "10.77.1.0/24"  # the range after overlay.cidr
    dev = inv.client_devices.devices["laptop"]
    assert str(dev.address) == "10.77.1.2"
    conf = out / "example-laptop.conf"
    png = out / "example-laptop.png"
    assert conf.stat().st_mode & 0o777 == 0o600 and png.stat().st_mode & 0o777 == 0o600
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = conf.read_text()
    private = next(ln.split(" = ", 1)[1] for ln in text.splitlines() if ln.startswith("PrivateKey"))
    assert private not in path.read_text()  # the inventory holds the public key only
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = X25519PrivateKey.from_private_bytes(base64.b64decode(private)).public_key()
    assert base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode() == dev.public_key
    shown = capsys.readouterr().out
    assert shown.count(private) == 1  # shown once
    assert client_cli.cmd_add(_args(path, "phone", out)) == 0
    assert str(load_inventory(path).client_devices.devices["phone"].address) == "10.77.1.3"  # type: ignore[union-attr]
    assert client_cli.cmd_add(_args(path, "phone", out)) == 2  # exists already
    err = capsys.readouterr().err
    assert "client_devices.devices.phone exists already" in err


def test_client_add_refuses_to_write_the_key_into_a_repository(
        write_inventory: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_inventory()
    before = path.read_text()
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert client_cli.cmd_add(_args(path, "laptop", repo / "keys")) == 2
    assert "never stored in a repository" in capsys.readouterr().err
    assert path.read_text() == before and not (repo / "keys").exists()


def test_client_add_leaves_an_inventory_it_cannot_extend_unchanged(
        write_inventory: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def clash(d: dict[str, Any]) -> None:  # the next /24 after the overlay is taken by the LAN
        d["lan"]["cidr"] = d["lan"]["admin_cidr"] = "10.77.1.0/24"
        for i, host in enumerate(d["hosts"].values()):
            host["address"] = f"10.77.1.{10 + i}"
    path = write_inventory(clash)
    before = path.read_text()
    assert client_cli.cmd_add(_args(path, "laptop", tmp_path / "out")) == 2
    assert "overlaps lan.cidr" in capsys.readouterr().err
    assert path.read_text() == before and not (tmp_path / "out").exists()
