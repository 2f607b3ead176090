"""Wake-on-LAN on Linux sleepers: the .link file, and the fact that reads ethtool honestly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hearth.configs import wol
from hearth.facts.wol import ethtool_script, parse_ethtool
from hearth.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]

E1000E = """mac: d8:bb:c1:30:60:12
interface: enp0s31f6
driver: e1000e
Settings for enp0s31f6:
	Supported ports: [ TP ]
	Supported link modes:   10baseT/Half 10baseT/Full
	Speed: 1000Mb/s
	Duplex: Full
	Supports Wake-on: pumbg
	Wake-on: d
	Current message level: 0x00000007 (7)
		drv probe link
	Link detected: yes
"""

VETH = """mac: 02:68:65:61:72:12
interface: eth0
driver:
Settings for eth0:
	Supported ports: [  ]
	Supported link modes:   Not reported
	Speed: 10000Mb/s
	Duplex: Full
	Auto-negotiation: off
	Port: Twisted Pair
	Link detected: yes
"""


def test_real_nic_with_magic_packet_support() -> None:
    info = parse_ethtool(E1000E.splitlines())
    assert (info["interface"], info["driver"], info["supports"], info["wake_on"]) == ("enp0s31f6", "e1000e",
                                                                                      "pumbg", "d")
    assert info["supported"] and not info["enabled"] and info["reason"] == ""
    enabled = parse_ethtool(E1000E.replace("Wake-on: d", "Wake-on: g").splitlines())
    assert enabled["enabled"]


def test_veth_without_wol_is_reported_unsupported_with_the_reason() -> None:
    info = parse_ethtool(VETH.splitlines())
    assert info["interface"] == "eth0" and not info["supported"] and not info["enabled"]
    assert info["reason"] == "eth0 reports no Wake-on-LAN support (ethtool lists no modes)"


def test_other_unsupported_shapes() -> None:
    only_phy = parse_ethtool(E1000E.replace("pumbg", "p").replace("Wake-on: d", "Wake-on: p").splitlines())
    assert not only_phy["supported"] and "not on a magic packet" in only_phy["reason"]
    refused = parse_ethtool(["mac: aa:bb:cc:dd:ee:ff", "interface: wlan0", "driver: iwlwifi",
                             "Cannot get wake-on-lan settings: Operation not supported"])
    assert not refused["supported"] and "Operation not supported" in refused["reason"]
    missing = parse_ethtool(["mac: aa:bb:cc:dd:ee:ff"])
    assert missing["interface"] is None and missing["reason"] == "no network interface has the MAC aa:bb:cc:dd:ee:ff"


def test_fact_script_runs_and_finds_nothing_for_an_unknown_mac() -> None:
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    out = subprocess.run(["sh", "-c", ethtool_script("AA:BB:CC:00:00:01")], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    assert parse_ethtool(out.splitlines())["reason"] == "no network interface has the MAC aa:bb:cc:00:00:01"


def test_link_file_only_for_linux_sleepers_woken_by_lan() -> None:
    inv = load_inventory(REPO / "inventory" / "lab.yml")
    sleepers = [name for name, host in inv.hosts.items() if host.sleep.sleeps and host.os == "linux"]
    assert sleepers
    for name in inv.hosts:
        link_files = wol.host_files(inv, name)
        if name not in sleepers:
            assert link_files == []
            continue
        (link,) = link_files
        text = link.render()
        assert link.dest == "/etc/systemd/network/50-hearth-wol.link"
        assert f"MACAddress={str(inv.hosts[name].mac).lower()}" in text.splitlines()
        assert "WakeOnLan=magic" in text.splitlines()
        # a .link replaces 99-default.link for its device: keep the default naming policy
        assert "NamePolicy=keep kernel database onboard slot path" in text.splitlines()


def test_windows_sleepers_get_no_link_file() -> None:
    inv = load_inventory(REPO / "inventory" / "example.yml")
    for name, host in inv.hosts.items():
        if host.os == "windows":
            assert wol.host_files(inv, name) == []
