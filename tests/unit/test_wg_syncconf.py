"""`wg syncconf` keeps the running private key (issue 9 item 2): syncconf sets the
interface to exactly its input, and wg-quick's stripped config has no PrivateKey
(hearth loads it with PostUp), so without hearth's awk step the interface would
lose its key. Run against a real userspace interface in a throwaway network
namespace when wireguard-go is at hand (the lab's image cache has it)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hearth.operations import wireguard

LAB_IMAGE_WG = "/var/lib/hearth-lab/cache/base-*/usr/bin/wireguard-go"
WIREGUARD_GO = shutil.which("wireguard-go") or next(iter(glob.glob(LAB_IMAGE_WG)), None)
CAN_RUN = (WIREGUARD_GO is not None and shutil.which("wg") is not None and shutil.which("unshare") is not None
           and os.geteuid() == 0 and os.path.exists("/dev/net/tun"))


def test_the_key_comes_from_the_key_file_never_the_command_line() -> None:
    command = wireguard.syncconf_command("wg0").get_raw_value()
    assert "wg syncconf wg0" in command and "wg-quick strip wg0" in command
    assert "/etc/wireguard/wg0.key" in command and "$(cat" not in command


@pytest.mark.skipif(not CAN_RUN, reason="needs root, wg, unshare, /dev/net/tun and wireguard-go")
def test_syncconf_changes_peers_and_keeps_the_private_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    iface = "hrhsync0"
    key = tmp_path / "wg.key"
    key.write_text(subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout)
    key.chmod(0o600)
    public = subprocess.run(["wg", "pubkey"], input=key.read_text(), capture_output=True, text=True).stdout.strip()
    peer = subprocess.run(["wg", "pubkey"], capture_output=True, text=True, check=True,
                          input=subprocess.run(["wg", "genkey"], capture_output=True, text=True).stdout).stdout.strip()
    stripped = tmp_path / "stripped.conf"
    stripped.write_text(f"[Interface]\nListenPort = 51999\n\n[Peer]\nPublicKey = {peer}\nAllowedIPs = 10.99.0.2/32\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "wg-quick"  # stands for `wg-quick strip` (it would read /etc/wireguard)
    fake.write_text(f"#!/bin/sh\ncat {stripped}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(wireguard, "key_paths", lambda _: (str(key), str(key) + ".pub"))
    command = wireguard.syncconf_command(iface).get_raw_value()
    script = (
        f"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 {WIREGUARD_GO} {iface} >/dev/null 2>&1 || exit 9\n"
        f"wg set {iface} private-key {key} listen-port 51999\n"
        f"PATH={bin_dir}:$PATH {command} || exit 8\n"
        f"wg show {iface} public-key; wg show {iface} peers\n"
        f"ip link del {iface}\n"
    )
    run = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [public, peer]
