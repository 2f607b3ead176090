"""`hearth lab up`, `down` and `status`: build, remove and describe the lab."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hearth.lab import daemon_ctl, keys, machine, network
from hearth.lab.artifacts.publish import publish
from hearth.lab.image import ensure_base_image
from hearth.lab.sh import LabError, step
from hearth.lab.spec import APT_PROXY_PORT, BRIDGE, LabSpec, load_spec
from hearth.lab.state import (
    NFT_TABLE,
    LabRecord,
    MachineRecord,
    exclusive,
    lab_root,
    load_record,
)

# Host command -> Debian package that provides it (checked before anything is made).
HOST_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "nft": "nftables",
    "ip": "iproute2",
    "ssh-keygen": "openssh-client",
    "gpg": "gnupg",
    "mountpoint": "util-linux",
}


def preflight() -> None:
    """Fail early, naming what is missing, unless this box can run the lab."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, bridge, systemd-nspawn)")
    missing = sorted({pkg for cmd, pkg in HOST_TOOLS.items() if shutil.which(cmd) is None})
    if missing:
        raise LabError(f"missing host packages: apt-get install {' '.join(missing)}")


def _record_for(spec: LabSpec, inventory: Path, existing: LabRecord | None) -> LabRecord:
    host_cidr = f"{spec.host_ip}/{spec.cidr.prefixlen}"
    if existing and existing.host_cidr != host_cidr:
        raise LabError(
            f"a lab from {existing.inventory} is up on {existing.host_cidr}; "
            "run `hearth lab down` first"
        )
    return LabRecord(
        inventory=str(inventory.resolve()),
        bridge=BRIDGE,
        bridge_created=existing.bridge_created if existing else False,
        host_cidr=host_cidr,
        broadcast=spec.broadcast,
        nft_table=NFT_TABLE,
        ssh_user=spec.ssh_user,
        ssh_port=spec.ssh_port,
        ssh_key=str(spec.ssh_key),
        known_hosts=str(spec.known_hosts),
        machines=dict(existing.machines) if existing else {},
    )


def up(inventory: Path) -> LabRecord:
    """Create (or complete) the lab the inventory describes and power it all on."""
    preflight()
    with exclusive():
        return _up(inventory)


def _up(inventory: Path) -> LabRecord:
    spec = load_spec(inventory)
    root = lab_root()
    lab = _record_for(spec, inventory, load_record(root))
    pubkey = keys.ensure_user_key(spec.ssh_key)
    with step("Lab secrets the inventory references (admin token, client keys), 0600"):
        keys.ensure_secrets(keys.secret_files(inventory, root))
    base = ensure_base_image(root / "cache", spec.ssh_user)
    with step(f"Create LAN bridge {BRIDGE} ({lab.host_cidr}) and nft fence"):
        lab.bridge_created = network.ensure_bridge(BRIDGE, lab.host_cidr) or lab.bridge_created
        lab.save(root)
        network.ensure_fence(NFT_TABLE, BRIDGE)
    host_keys: dict[str, tuple[str, str]] = {}
    with step(f"Create {len(spec.machines)} machines (namespace, veth, overlay root, keys)"):
        for ms in spec.machines:
            m = lab.machines.get(ms.name) or MachineRecord(
                name=ms.name, address=ms.address, mac=ms.mac,
                netns=network.netns_name(ms.name), veth=network.veth_name(ms.name),
                dir=str(root / "machines" / ms.name), base=str(base), sleeps=ms.sleeps,
            )  # fmt: skip
            lab.machines[ms.name] = m
            lab.save(root)  # recorded before it exists, so `down` can clean a half-made lab
            network.ensure_machine_link(
                m.netns, m.veth, BRIDGE, m.mac,
                f"{m.address}/{spec.cidr.prefixlen}", spec.host_ip,
            )  # fmt: skip
            key = machine.create(m, lab, pubkey, APT_PROXY_PORT)
            host_keys[m.name] = (m.address, key)
    for name, m in lab.machines.items():
        if name not in host_keys:  # kept from an earlier `up`
            host_keys[name] = (m.address, keys.host_key_line(m.path / "rootfs/etc/ssh"))
    keys.write_known_hosts(spec.known_hosts, keys.known_hosts_text(host_keys, spec.ssh_port))
    with step(f"Publish artifacts (stand-ins, signed apt repo, pip index) at {spec.artifact_url}"):
        publish(root, spec.artifact_url)
    with step("Start lab daemon (power controller, artifact server, apt proxy)"):
        daemon_ctl.ensure_running(root, lab)
    boot_all(lab, [lab.machines[ms.name] for ms in spec.machines])
    return lab


def boot_all(lab: LabRecord, machines: list[MachineRecord]) -> None:
    """Power on ``machines`` that are off and wait for every sshd."""
    with step(f"Boot {len(machines)} machines and wait for sshd"):
        for m in machines:
            machine.request_power_on(m)
        with ThreadPoolExecutor(max_workers=max(1, len(machines))) as pool:
            list(pool.map(lambda m: machine.wait_sshd(m, lab.ssh_port), machines))


def down(*, purge: bool = False) -> list[str]:
    """Remove everything lab.json lists; return what was removed (for printing)."""
    preflight()
    with exclusive():
        return _down(purge=purge)


def _down(*, purge: bool) -> list[str]:
    root = lab_root()
    lab = load_record(root)
    removed: list[str] = []
    if lab is not None:
        for m in lab.machines.values():  # before the daemon, so it reaps their processes
            with step(f"Remove machine {m.name}"):
                machine.destroy(m)
                network.remove_machine_link(m.netns, m.veth)
            removed.append(f"machine {m.name} (netns {m.netns}, veth {m.veth})")
        if daemon_ctl.stop(root):
            removed.append("lab daemon")
        network.remove_fence(lab.nft_table)
        removed.append(f"nft table inet {lab.nft_table}")
        if lab.bridge_created:
            network.remove_bridge(lab.bridge)
            removed.append(f"bridge {lab.bridge}")
        if keys.remove_known_hosts(Path(lab.known_hosts)):
            removed.append(f"known_hosts {lab.known_hosts}")
        for made in (root / "artifacts", root / "machines"):
            if made.exists():
                shutil.rmtree(made)
        (root / "daemon.log").unlink(missing_ok=True)
        (root / "lab.json").unlink()
    if purge:
        for extra in (root / "cache", root / "ssh", root / "gpg", root / "secrets"):
            if extra.exists():
                shutil.rmtree(extra)
                removed.append(str(extra))
    return removed
