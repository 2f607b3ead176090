"""The node baseline's files, rendered from the example inventory (Debian and Ubuntu)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import base
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory

DEBIAN = base.DEBIAN_12
UBUNTU_22 = {"name": "Ubuntu", "major": 22, "minor": 4, "release_meta": {"ID": "ubuntu", "VERSION_CODENAME": "jammy"}}
UBUNTU_24 = {"name": "Ubuntu", "major": 24, "minor": 4, "release_meta": {"ID": "ubuntu", "VERSION_CODENAME": "noble"}}


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(Path(__file__).resolve().parents[2] / "inventory" / "example.yml", group_defaults())


def by_dest(files: list[Any]) -> dict[str, str]:
    return {f.dest: f.render() for f in files}


@pytest.mark.parametrize("distro", [DEBIAN, UBUNTU_22, UBUNTU_24], ids=["debian12", "ubuntu22", "ubuntu24"])
def test_sshd_dropin_disables_passwords(inv: Inventory, distro: dict[str, Any]) -> None:
    text = by_dest(base.host_files(inv, "eyes", {"distro": distro}))[base.SSHD_DROPIN]
    lines = {line.split()[0]: line.split()[1] for line in text.splitlines() if line and not line.startswith("#")}
    assert lines["PasswordAuthentication"] == "no"
    assert lines["KbdInteractiveAuthentication"] == "no"
    assert lines["PermitRootLogin"] == "no"
    assert lines["PubkeyAuthentication"] == "yes"
    assert lines["Port"] == "22"


def test_root_login_only_when_asked(write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(lambda d: d["ssh"].update(root_login=True))
    inv = load_inventory(path, group_defaults())
    assert "PermitRootLogin prohibit-password" in base.sshd(inv, "eyes").render()


def test_sudoers_for_automation_user(inv: Inventory) -> None:
    cf = base.sudoers(inv, "k3master")
    assert cf.mode == "0440"
    assert "hearth ALL=(ALL:ALL) NOPASSWD: ALL" in cf.render()


@pytest.mark.skipif(shutil.which("visudo") is None, reason="visudo not installed")
def test_sudoers_passes_visudo(inv: Inventory, tmp_path: Path) -> None:
    path = tmp_path / "hearth"
    path.write_text(base.sudoers(inv, "k3master").render())
    assert subprocess.run(["visudo", "-cf", str(path)], capture_output=True).returncode == 0
    path.write_text("hearth ALL=(ALL NOPASSWD ALL\n")  # the validator really rejects a broken file
    assert subprocess.run(["visudo", "-cf", str(path)], capture_output=True).returncode != 0


def test_no_sudoers_when_deploying_as_root(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["ssh"].update(user="root")), group_defaults())
    assert base.SUDOERS not in by_dest(base.host_files(inv, "eyes"))


CONTAINER = {"container": "systemd-nspawn"}


def test_bridge_sysctls_in_a_container_only_with_the_hosts_bridge_netfilter(inv: Inventory) -> None:
    without = by_dest(base.host_files(inv, "eyes", {"bridge_nf": False, **CONTAINER}))
    with_bridge = by_dest(base.host_files(inv, "eyes", {"bridge_nf": True, **CONTAINER}))
    assert "net.ipv4.ip_forward = 1" in without[base.SYSCTL]
    assert "bridge-nf-call-iptables" not in without[base.SYSCTL]
    assert "net.bridge.bridge-nf-call-iptables = 1" in with_bridge[base.SYSCTL]
    assert base.K3S_MODULES not in without and base.K3S_MODULES not in with_bridge  # the host's modules


def test_a_k3s_node_with_its_own_kernel_loads_br_netfilter_so_the_first_file_is_the_last(inv: Inventory) -> None:
    """k3s loads br_netfilter when it starts, after base: base loads it first (and at boot), so
    the sysctl file has the bridge keys on the first deploy, not only from the second one."""
    assert inv.hosts["eyes"].in_k3s
    before = by_dest(base.host_files(inv, "eyes", {"bridge_nf": False}))
    after = by_dest(base.host_files(inv, "eyes", {"bridge_nf": True}))
    assert before == after
    assert "net.bridge.bridge-nf-call-iptables = 1" in before[base.SYSCTL]
    assert before[base.K3S_MODULES].splitlines()[-1] == "br_netfilter"


def test_no_bridge_module_on_a_host_outside_k3s(inv: Inventory) -> None:
    # validation keeps every GPU host in the cluster: the model is changed after loading
    eyes = inv.hosts["eyes"].model_copy(update={"roles": []})
    outside = inv.model_copy(update={"hosts": {**inv.hosts, "eyes": eyes}})
    files = by_dest(base.host_files(outside, "eyes", {"bridge_nf": False}))
    assert base.K3S_MODULES not in files
    assert "bridge-nf-call-iptables" not in files[base.SYSCTL]


def test_unattended_upgrades_off_by_default(inv: Inventory) -> None:
    assert base.UNATTENDED not in by_dest(base.host_files(inv, "eyes"))


def test_unattended_origins_per_distro(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d.update(settings={"unattended_upgrades": True})), group_defaults())
    debian = by_dest(base.host_files(inv, "eyes", {"distro": DEBIAN}))
    ubuntu = by_dest(base.host_files(inv, "eyes", {"distro": UBUNTU_24}))
    assert 'APT::Periodic::Unattended-Upgrade "1";' in debian[base.AUTO_UPGRADES]
    assert "label=Debian-Security" in debian[base.UNATTENDED]
    assert "${distro_id}:${distro_codename}-security" in ubuntu[base.UNATTENDED]
    assert "Debian-Security" not in ubuntu[base.UNATTENDED]


def test_unsupported_distribution_is_refused(inv: Inventory) -> None:
    with pytest.raises(ValueError, match="Ubuntu 20 is not a system hearth configures"):
        base.host_files(inv, "eyes", {"distro": {"name": "Ubuntu", "major": 20, "release_meta": {"ID": "ubuntu"}}})


# --- issue 9 item 1a: deploying as root is not locked out by the next run -------------


def test_deploying_as_root_keeps_root_key_login(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["ssh"].update(user="root")), group_defaults())
    assert not inv.ssh.root_login  # the default, which used to render "PermitRootLogin no"
    assert "PermitRootLogin prohibit-password" in base.sshd(inv, "eyes").render()


def test_one_host_deployed_as_root(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d["hosts"]["eyes"].update(ssh_user="root")), group_defaults())
    assert "PermitRootLogin prohibit-password" in base.sshd(inv, "eyes").render()
    assert "PermitRootLogin no" in base.sshd(inv, "hands").render()


# --- issue 9 item 7: sane system settings ----------------------------------------------


def test_no_ipv6_forwarding(inv: Inventory) -> None:
    for bridge in (False, True):
        text = by_dest(base.host_files(inv, "eyes", {"bridge_nf": bridge}))[base.SYSCTL]
        assert "ipv6" not in text.replace("ip6tables", "")
        assert "net.ipv6" not in base.sysctls(bridge)


def _unattended(inv: Inventory, name: str, distro: dict[str, Any]) -> str:
    return by_dest(base.host_files(inv, name, {"distro": distro}))[base.UNATTENDED]


def test_unattended_is_security_only_and_holds_nvidia_on_gpu_hosts(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d.update(settings={"unattended_upgrades": True})), group_defaults())
    gpu = _unattended(inv, "eyes", UBUNTU_22)  # an NVIDIA GPU host
    plain = _unattended(inv, "k3master", DEBIAN)
    assert gpu.index("#clear Unattended-Upgrade::Allowed-Origins;") < gpu.index("Allowed-Origins {")
    assert plain.index("#clear Unattended-Upgrade::Origins-Pattern;") < plain.index("Origins-Pattern {")
    assert '"nvidia-";' in gpu and '"libcuda";' in gpu and "Package-Blacklist" in gpu
    assert "Package-Blacklist" not in plain


@pytest.mark.skipif(shutil.which("apt-config") is None, reason="apt-config not installed")
@pytest.mark.parametrize("distro", [DEBIAN, UBUNTU_24], ids=["debian12", "ubuntu24"])
def test_apt_reads_only_the_security_origins(write_inventory: Callable[..., Path], tmp_path: Path,
                                             distro: dict[str, Any]) -> None:
    """apt itself parses the distro's 50unattended-upgrades followed by hearth's file."""
    inv = load_inventory(write_inventory(lambda d: d.update(settings={"unattended_upgrades": True})), group_defaults())
    distros = (
        'Unattended-Upgrade::Allowed-Origins {\n "${distro_id}:${distro_codename}";\n'
        ' "${distro_id}:${distro_codename}-security";\n};\n'
        'Unattended-Upgrade::Origins-Pattern {\n "origin=Debian,codename=${distro_codename},label=Debian";\n'
        ' "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";\n};\n'
    )
    both = tmp_path / "apt.conf"
    both.write_text(distros + _unattended(inv, "eyes", distro))
    dump = subprocess.run(["apt-config", "-c", str(both), "dump"], capture_output=True, text=True, check=True).stdout
    values = [line.split('"')[1] for line in dump.splitlines()
              if line.startswith(("Unattended-Upgrade::Allowed-Origins::", "Unattended-Upgrade::Origins-Pattern::"))]
    assert values and all("security" in v.lower() for v in values), values
    held = [line.split('"')[1] for line in dump.splitlines()
            if line.startswith("Unattended-Upgrade::Package-Blacklist::")]
    assert "nvidia-" in held and "cuda-" in held


def test_windows_hosts_get_no_linux_files(inv: Inventory) -> None:
    assert base.host_files(inv, "mouth") == []
