"""arm64 for real: the machine is arm64, artifacts come per arch, a wrong arch is an error.

For each host whose inventory ``arch`` is arm64 (an emulated container in the lab):
its artifacts are the arm64 builds, checked against their own sha256; and a deploy
whose inventory says the wrong architecture stops, naming the host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import k3s as k3s_configs
from hearth.deploy_data import group_defaults
from hearth.lab import arm64image, cycle
from hearth.lab.harness import Lab
from tests.lab import packets
from tests.lab import test_firewall as fw

pytestmark = pytest.mark.lab


def _arm64(lab: Lab) -> str:
    names = [m.name for m in lab.spec.machines if m.arch == "arm64"]
    if not names:
        pytest.skip("no arm64 host in this inventory")
    return names[0]


def test_arm64_host_gets_the_arm64_build_checked_against_its_own_sha256(lab: Lab) -> None:
    name = _arm64(lab)
    h = lab.host(name)
    base = lab.spec.artifact_url
    manifest = json.loads(h.check_output(f"curl -sSf {base}/manifest.json"))["ollama"]
    if "sha256_arm64" not in manifest:
        pytest.skip("this artifact server publishes no per-arch builds")
    arch = h.check_output("dpkg --print-architecture")
    assert arch == "arm64"
    url, sha = manifest[f"url_{arch}"], manifest[f"sha256_{arch}"]
    assert sha != manifest["sha256_amd64"]
    d = h.check_output("mktemp -d")
    try:
        h.check_output(f"curl -sSf -o {d}/release {url}")
        assert h.run(f"echo '{sha}  {d}/release' | sha256sum -c --quiet").rc == 0
        wrong = manifest["sha256_amd64"]
        assert h.run(f"echo '{wrong}  {d}/release' | sha256sum -c --quiet").rc != 0
    finally:
        h.run(f"rm -rf {d}")


def test_wrong_arch_in_the_inventory_stops_the_deploy_naming_the_host(lab: Lab, tmp_path: Path) -> None:
    name = _arm64(lab)
    import yaml

    data = yaml.safe_load(lab.inventory.read_text())
    data["hosts"][name]["arch"] = "amd64"
    inv = tmp_path / "wrong-arch.yml"
    inv.write_text(yaml.safe_dump(data))
    run = cycle.run_pyinfra(cycle.pyinfra_inventory_for(inv), limit=name, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"host {name}: the inventory says arch amd64 but the machine is arm64" in out


def test_arm64_nft_is_the_native_build_beside_the_arm64_package(lab: Any) -> None:
    """The lab image's accommodation (hearth.lab.arm64image): the role's arm64 package stays."""
    if not lab.local:
        pytest.skip("the native nft is a lab-image accommodation: a real Pi runs its own nft")
    h = lab.host(_arm64(lab))
    assert h.check_output("dpkg-query -W -f '${Architecture}' nftables") == "arm64"
    assert h.check_output(f"dpkg-divert --truename {arm64image.NFT}") == arm64image.NFT_DIVERTED
    assert arm64image.NFT in h.check_output("dpkg -L nftables").splitlines()  # the package's file, diverted
    elf_machine = "od -An -tx1 -j18 -N2 {}"
    assert h.check_output(elf_machine.format(arm64image.NFT_DIVERTED)).split() == ["b7", "00"]  # aarch64
    assert h.check_output(elf_machine.format(arm64image.NFT)).split() == ["3e", "00"]  # x86-64
    assert h.check_output("sudo nft --version").startswith("nftables v")


def test_arm64_firewall_enforced_by_the_host_kernel(lab: Any) -> None:
    """Real packets to the arm64 host: its service ports only over the overlay, others dropped."""
    name = _arm64(lab)
    inv = fw.inventory(lab)
    node = lab.host(name)
    cf = fw.configs.ruleset(inv, name)
    live = node.check_output(f"sudo nft list table {fw.configs.FAMILY} {fw.configs.TABLE}")
    assert f'comment "{cf.context["stamp"]}"' in live and "policy drop;" in live
    assert node.service("hearth-firewall").is_enabled  # hearth's boot unit, as test_firewall checks
    port = next(p for proto, p, _ in fw.configs.service_ports(inv, name) if proto == "tcp")
    closed = 18998  # opened by no role
    started: list[str] = []
    try:
        for p in (port, closed):  # emulated python3 starts slowly: wait for the listener, bounded
            packets.listen(node, p, started, within=30.0)
        target = inv.hosts[name]
        peer = lab.host(next(n for n in inv.linux_hosts() if n != name))
        assert packets.tcp_open_from(peer, str(target.overlay_ip), port), "over the overlay: must answer"
        assert not packets.tcp_open_from(peer, target.address, port), "peer's LAN address: dropped"
        assert not packets.tcp_open_from_here(target.address, port), "this machine's LAN address: dropped"
        assert not packets.tcp_open_from(peer, str(target.overlay_ip), closed), "a port no role opens: dropped"
        assert packets.tcp_open_from_here(target.address, inv.ssh.port), "ssh from the admin LAN: accepted"
    finally:
        packets.stop(node, started)


def test_arm64_k3s_agent_joined_with_the_arm64_asset(lab: Any) -> None:
    name = _arm64(lab)
    inv = fw.inventory(lab)
    if inv.k3s is None or "k3s_agent" not in inv.hosts[name].roles:
        pytest.skip(f"{name} is no k3s agent in this inventory")
    settings = {**group_defaults(), **inv.settings}
    _, url, sha = k3s_configs.release(inv, name, settings)
    assert url.endswith("/" + k3s_configs.asset("arm64", settings))
    assert lab.host(name).check_output(f"sudo sha256sum {k3s_configs.BINARY}").split()[0] == sha
    out = lab.host(inv.k3s.server).check_output(f"sudo k3s kubectl get node {name} -o json")
    node = json.loads(out)
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
