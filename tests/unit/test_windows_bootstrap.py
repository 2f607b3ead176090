"""`hearth windows bootstrap`: the one-time script, from the inventory, that a person runs as Administrator."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.cli import main
from hearth.configs import windows as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from tests.unit.windows_support import parse_problems


@pytest.fixture
def inventory(write_inventory: Callable[..., Path], tmp_path: Path) -> Path:
    key = tmp_path / "deploy"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hearth@deploy", "-f", str(key)], check=True)

    def change(data: dict[str, Any]) -> None:
        data["ssh"]["key"] = str(key)

    return write_inventory(change)


def test_bootstrap_writes_a_script_that_parses_and_says_how_to_run_it(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    assert main(["windows", "bootstrap", str(inventory), "windows-gpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    script = (out / "hearth-bootstrap-windows-gpu.ps1").read_text()
    assert parse_problems(script) == []
    assert "Run as Administrator" in printed and "-ExecutionPolicy Bypass -File .\\hearth-bootstrap-windows-gpu.ps1" \
        in printed
    assert f"hearth hostkey accept {inventory} windows-gpu --expect SHA256:" in printed
    public = (tmp_path / "deploy.pub").read_text().strip()
    assert f"[IO.File]::WriteAllText($keys, '{public}\n')" in script
    assert "/inheritance:r /grant:r '*S-1-5-18:F' '*S-1-5-32-544:F'" in script  # the ACL sshd requires
    assert "Add-WindowsCapability -Online -Name 'OpenSSH.Server~~~~0.0.1.0'" in script
    assert "-Name 'DefaultShell' -Value 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe'" in script
    assert "PasswordAuthentication no" in script
    assert "Disable-NetFirewallRule -Name 'OpenSSH-Server-In-TCP'" in script
    assert "-RemoteAddress @('192.168.1.0/24', '10.77.0.0/24')" in script
    assert "ssh-keygen.exe' -l -f" in script
    # The firewall comes before sshd first listens
    assert script.index("New-NetFirewallRule") < script.index("Start-Service -Name 'sshd'")


def test_bootstrap_leaves_what_the_role_keeps(inventory: Path) -> None:
    """The role's first run must not redo the bootstrap: same sshd_config bytes, same SSH rule."""
    inv = load_inventory(inventory, group_defaults())
    script = configs.bootstrap_script(inv, "windows-gpu", "ssh-ed25519 AAAA hearth").render()
    here = re.search(r"\$config = @'\n(.*?)\n'@", script, re.S)
    assert here is not None
    assert here.group(1) + "\n" == configs.sshd_config(inv, "windows-gpu").render()  # written with "`n" appended
    ssh_rule = configs.firewall_rules(inv, "windows-gpu")[0]
    assert f"-Description '{ssh_rule.stamp()}'" in script


def test_bootstrap_refuses_a_linux_host_or_a_missing_key(
    inventory: Path, write_inventory: Callable[..., Path], capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["windows", "bootstrap", str(inventory), "eyes"]) == 2
    assert "eyes is not an os: windows host" in capsys.readouterr().err
    assert main(["windows", "bootstrap", str(write_inventory(name="nokey.yml")), "windows-gpu"]) == 2
    assert "set ssh.key" in capsys.readouterr().err


def test_render_writes_the_windows_files_under_their_drive_path(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "render"
    assert main(["render", str(inventory), "--out", str(out)]) == 0
    sshd = out / "windows-gpu" / "C" / "ProgramData" / "ssh" / "sshd_config"
    tunnel = out / "windows-gpu" / "C" / "ProgramData" / "hearth" / "wireguard" / "wg0.conf"
    assert "PasswordAuthentication no" in sshd.read_text()
    text = tunnel.read_text()
    assert "Address = 10.77.0.30/24" in text and "PrivateKey" not in text  # the key is added on the box
    assert "<public key of k3master: read from the host at deploy>" in text
