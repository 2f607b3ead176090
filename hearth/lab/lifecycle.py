"""`hearth lab up`, `down` and `status`: build, remove and describe the lab."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hearth.lab import daemon_ctl, hostcheck, keys, machine, network, power_cli
from hearth.lab import images as image_cache
from hearth.lab.arm64image import ensure_arm64_lab_image
from hearth.lab.artifacts.publish import publish
from hearth.lab.image import cache_lock, ensure_base_image
from hearth.lab.sh import LabError, step
from hearth.lab.spec import APT_PROXY_PORT, BRIDGE, LabSpec, MachineSpec, load_spec
from hearth.lab.state import (
    NFT_TABLE,
    LabRecord,
    MachineRecord,
    cache_dir,
    exclusive,
    lab_root,
    load_record,
)
from hearth.lab.vmimage import ensure_vm_image


def preflight(spec: LabSpec | None = None) -> None:
    """Fail early, in one line naming what to install, unless this box can run the lab."""
    hostcheck.check((m.kind, m.arch) for m in (spec.machines if spec else ()))


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
    spec = load_spec(inventory)
    preflight(spec)
    with exclusive():
        return _up(inventory, spec)


def images(spec: LabSpec, cache: Path) -> dict[tuple[str, str], Path]:
    """The image each (kind, arch) boots, built (in parallel per arch) when not cached."""
    wanted = {(m.kind, m.arch) for m in spec.machines}

    def chain(arch: str) -> dict[tuple[str, str], Path]:
        if arch == "arm64" and hostcheck.native_arch() == "amd64":  # emulated: nft needs the native build
            base = ensure_arm64_lab_image(cache, spec.ssh_user)
        else:
            base = ensure_base_image(cache, spec.ssh_user, arch)
        made = {("container", arch): base}
        if ("vm", arch) in wanted:
            made[("vm", arch)] = ensure_vm_image(cache, base)
        return made

    archs = sorted({arch for _, arch in wanted})
    with cache_lock(cache), ThreadPoolExecutor(max_workers=len(archs)) as pool:
        booted = {k: v for made in pool.map(chain, archs) for k, v in made.items()}
    if stale := image_cache.stale_names(cache, spec.ssh_user):
        print(f"--> {len(stale)} stale image(s) in {cache}, left by older recipes "
              "(`hearth lab images --prune` frees them)", flush=True)
    return booted


def _up(inventory: Path, spec: LabSpec) -> LabRecord:
    root = lab_root()
    lab = _record_for(spec, inventory, load_record(root))
    pubkey = keys.ensure_user_key(spec.ssh_key)
    with step("Lab secrets the inventory references (admin token, client keys), 0600"):
        keys.ensure_secrets(keys.secret_files(inventory, root))
    image = images(spec, cache_dir())
    image_cache.register_lab(cache_dir(), root)  # its images kept by --prune, its machines off or not
    with step(f"Create LAN bridge {BRIDGE} ({lab.host_cidr}) and nft fence"):
        lab.bridge_created = network.ensure_bridge(BRIDGE, lab.host_cidr) or lab.bridge_created
        lab.save(root)
        network.ensure_fence(NFT_TABLE, BRIDGE)
    host_keys: dict[str, tuple[str, str]] = {}
    with step(f"Create {len(spec.machines)} machines (namespace, veth, overlay root, keys)"):
        for ms in spec.machines:
            m = lab.machines.get(ms.name) or _new_record(ms, root, image[(ms.kind, ms.arch)])
            if (m.kind, m.arch) != (ms.kind, ms.arch):
                raise LabError(
                    f"{m.name} is up as a {m.arch} {m.kind} but the inventory now says "
                    f"{ms.arch} {ms.kind}; run `hearth lab down` first"
                )
            lab.machines[ms.name] = m
            lab.save(root)  # recorded before it exists, so `down` can clean a half-made lab
            if m.tap:
                network.ensure_tap(m.tap, BRIDGE)
            else:
                network.ensure_machine_link(
                    m.netns, m.veth, BRIDGE, m.mac,
                    f"{m.address}/{spec.cidr.prefixlen}", spec.host_ip,
                )  # fmt: skip
            key = machine.get(m).create(lab, pubkey, APT_PROXY_PORT)
            host_keys[m.name] = (m.address, key)
    for name, m in lab.machines.items():
        if name not in host_keys:  # kept from an earlier `up`
            host_keys[name] = (m.address, machine.get(m).host_key())
    keys.write_known_hosts(spec.known_hosts, keys.known_hosts_text(host_keys, spec.ssh_port))
    with step(f"Publish artifacts (stand-ins, signed apt repo, pip index) at {spec.artifact_url}"):
        publish(root, spec.artifact_url)
    with step("Start lab daemon (power controller, artifact server, apt proxy)"):
        daemon_ctl.ensure_running(root, lab)
    boot_all(lab, [lab.machines[ms.name] for ms in spec.machines])
    return lab


def _new_record(ms: MachineSpec, root: Path, image: Path) -> MachineRecord:
    vm = ms.kind == "vm"
    return MachineRecord(
        name=ms.name, address=ms.address, mac=ms.mac,
        netns="" if vm else network.netns_name(ms.name),
        veth="" if vm else network.veth_name(ms.name),
        tap=network.tap_name(ms.name) if vm else "",
        dir=str(root / "machines" / ms.name), base=str(image), sleeps=ms.sleeps,
        kind=ms.kind, arch=ms.arch, memory_mb=ms.memory_mb, cpus=ms.cpus,
    )  # fmt: skip


def boot_all(lab: LabRecord, machines: list[MachineRecord]) -> None:
    """Power on ``machines`` that are off (wake those asleep); wait until each lets us log in."""
    kinds = sorted({f"{m.arch} {m.kind}" for m in machines})
    with step(f"Boot {len(machines)} machines ({', '.join(kinds)}) and wait for an SSH login"):
        for m in machines:
            machine.request_power_on(m)
        with ThreadPoolExecutor(max_workers=max(1, len(machines))) as pool:
            list(pool.map(lambda m: _until_login(lab, m), machines))


def _until_login(lab: LabRecord, m: MachineRecord) -> None:
    """sshd's banner, then a login that works, within the machine's boot bound."""
    start = time.monotonic()
    machine.wait_sshd(m, lab.ssh_port, timeout=machine.boot_timeout(m))
    power_cli.wait_login(lab, m, timeout=max(30.0, machine.boot_timeout(m) - (time.monotonic() - start)))


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
                machine.get(m).destroy()
                network.remove_machine_link(m.netns, m.veth, m.tap)
            plumbing = f"tap {m.tap}" if m.tap else f"netns {m.netns}, veth {m.veth}"
            removed.append(f"machine {m.name} ({m.arch} {m.kind}, {plumbing})")
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
        image_cache.unregister_lab(cache_dir(), root)
    if purge:
        for extra in (cache_dir(), root / "cache", root / "ssh", root / "gpg", root / "secrets"):
            if extra.exists():
                shutil.rmtree(extra)
                removed.append(str(extra))
    return removed
