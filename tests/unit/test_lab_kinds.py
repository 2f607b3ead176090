"""Lab machine kinds: the inventory key, the one interface, host checks, QMP, KVM choice."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth import wake
from hearth.inventory import InventoryError, load_inventory
from hearth.lab import accel, hostcheck, machine, power_cli, qmp
from hearth.lab.artifacts import publish
from hearth.lab.cli import status_rows
from hearth.lab.sh import LabError
from hearth.lab.spec import load_spec
from hearth.lab.state import LabRecord, MachineRecord
from hearth.lab.vm import VirtualMachine

REPO = Path(__file__).resolve().parents[2]


def _lab_inventory(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load((REPO / "inventory/lab.yml").read_text())
    change(data)
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_kind_and_arch_come_from_the_inventory(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["lab-ollama"]["lab"] = {"kind": "vm", "memory_mb": 768, "cpus": 1}
        data["hosts"]["lab-agent"]["arch"] = "arm64"

    spec = load_spec(_lab_inventory(tmp_path, change))
    kinds = {m.name: (m.kind, m.arch) for m in spec.machines}
    assert kinds == {"lab-cp": ("container", "amd64"), "lab-vllm": ("container", "amd64"),
                     "lab-ollama": ("vm", "amd64"), "lab-agent": ("container", "arm64")}  # fmt: skip
    vm = spec.machine("lab-ollama")
    assert (vm.memory_mb, vm.cpus) == (768, 1)


def test_unknown_kind_and_arm64_vm_are_refused_naming_the_key(tmp_path: Path) -> None:
    bad = _lab_inventory(tmp_path, lambda d: d["hosts"]["lab-agent"].update(lab={"kind": "lxc"}))
    with pytest.raises(InventoryError, match=r"hosts\.lab-agent\.lab\.kind"):
        load_inventory(bad)
    arm_vm = _lab_inventory(
        tmp_path, lambda d: d["hosts"]["lab-agent"].update(arch="arm64", lab={"kind": "vm"})
    )
    with pytest.raises(InventoryError, match=r"hosts\.lab-agent\.lab\.kind: arch arm64: lab VMs are amd64"):
        load_inventory(arm_vm)


def test_arm64_workers_refuse_gpu_only_serves_and_discrete_nvidia(
    write_inventory: Callable[..., Path],
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["phone1"]["serves"] = [
            {"name": "v", "engine": "vllm", "model": "m", "arch": "qwen2.5-7b", "quant": "awq"}
        ]
        data["hosts"]["phone2"]["gpus"] = [{"model": "RTX 3060", "vram_gb": 12}]

    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(change))
    text = str(caught.value)
    assert "hosts.phone1.serves[0].engine: arch arm64 worker without a GPU: vllm" in text
    assert "hosts.phone2.gpus[0]: arch arm64: the NVIDIA role" in text
    load_inventory(write_inventory())  # the DGX Spark (arm64, unified memory, vLLM) stays valid


def test_missing_host_packages_are_one_line_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hostcheck.os, "geteuid", lambda: 0)
    missing = {"qemu-system-x86_64", "qemu-aarch64-static", "update-binfmts", "arch-test"}
    monkeypatch.setattr(hostcheck.shutil, "which", lambda cmd: None if cmd in missing else f"/bin/{cmd}")
    monkeypatch.setattr(hostcheck, "native_arch", lambda: "amd64")
    hostcheck.check([("container", "amd64")])  # containers alone need none of them
    with pytest.raises(LabError, match=r"^missing host packages: apt-get install qemu-system-x86$"):
        hostcheck.check([("container", "amd64"), ("vm", "amd64")])
    with pytest.raises(LabError, match=r"apt-get install arch-test binfmt-support qemu-user-static$"):
        hostcheck.check([("container", "arm64")])
    missing.add("mmdebstrap")  # every lab builds its base image with it
    with pytest.raises(LabError, match=r"^missing host packages: apt-get install mmdebstrap$"):
        hostcheck.check([("container", "amd64")])
    with pytest.raises(LabError, match=r"arch riscv64 are not supported"):
        hostcheck.check([("container", "riscv64")])


def test_one_interface_whatever_the_kind(tmp_path: Path) -> None:
    lab = _record(tmp_path)
    got = {n: type(machine.get(m)).__name__ for n, m in lab.machines.items()}
    assert got == {"c1": "Container", "v1": "VirtualMachine"}
    for m in lab.machines.values():
        assert machine.get(m).state() == "off" and machine.get(m).pid() is None
    rows = {r["name"]: r for r in status_rows(lab)}
    assert rows["c1"]["kind"] == "container" and "accel" not in rows["c1"]
    assert (rows["v1"]["kind"], rows["v1"]["accel"], rows["v1"]["accel_why"]) == ("vm", "-", "not booted yet")
    (tmp_path / "v1" / "accel.json").write_text(json.dumps({"accel": "tcg", "why": "no /dev/kvm"}))
    assert {r["name"]: r.get("accel_why") for r in status_rows(lab)}["v1"] == "no /dev/kvm"
    bogus = MachineRecord(**{**lab.machines["c1"].__dict__, "kind": "lxc"})
    with pytest.raises(LabError, match="unknown lab machine kind 'lxc'"):
        machine.get(bogus)


def test_vm_command_line_carries_mac_tap_s3_and_direct_kernel_boot(tmp_path: Path) -> None:
    vm = VirtualMachine(_record(tmp_path).machines["v1"])
    argv = vm.argv("tcg")
    joined = " ".join(argv)
    assert "-machine pc,accel=tcg -smp 2 -m 1024" in joined
    assert "-global PIIX4_PM.disable_s3=0" in joined
    assert f"-kernel {tmp_path}/image/boot/vmlinuz-6.1.0-40-amd64" in joined
    assert f"-initrd {tmp_path}/image/boot/initrd.img-6.1.0-40-amd64" in joined
    assert "-append root=/dev/vda rw console=ttyS0 net.ifnames=0" in joined
    assert "tap,id=lan,ifname=hktap0,script=no,downscript=no" in argv
    assert "virtio-net-pci,netdev=lan,mac=02:68:65:61:72:99,romfile=" in argv
    assert f"unix:{tmp_path}/v1/qmp.sock,server=on,wait=off" in argv
    assert "-cpu host" in " ".join(vm.argv("kvm"))


def test_accelerator_choice_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = tmp_path / "vmlinuz-6.1.0-40-amd64"
    cache = tmp_path / "accel.json"
    monkeypatch.setenv("HEARTH_LAB_ACCEL", "tcg")
    assert accel.choose(kernel, cache) == ("tcg", "forced by HEARTH_LAB_ACCEL=tcg")
    monkeypatch.delenv("HEARTH_LAB_ACCEL")
    monkeypatch.setattr(accel, "KVM_DEVICE", tmp_path / "kvm")
    assert accel.choose(kernel, cache) == ("tcg", f"no {tmp_path / 'kvm'} on this machine")

    (tmp_path / "kvm").write_text("")  # openable: the trial decides, once per host boot
    calls: list[Path] = []

    def fake_probe(k: Path) -> tuple[str, str]:
        calls.append(k)
        return "tcg", "a test guest under KVM printed nothing within 10s"

    monkeypatch.setattr(accel, "probe", fake_probe)
    first = accel.choose(kernel, cache)
    assert first == accel.choose(kernel, cache) == ("tcg", "a test guest under KVM printed nothing within 10s")
    assert calls == [kernel]


def test_qmp_client_skips_events_and_reports_errors(tmp_path: Path) -> None:
    sock_path = tmp_path / "qmp.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(4)
    seen: list[dict[str, Any]] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn, conn.makefile("rwb") as f:
                f.write(b'{"QMP": {"version": {}, "capabilities": []}}\n')
                f.flush()
                for line in f:
                    msg = json.loads(line)
                    seen.append(msg)
                    if msg["execute"] == "qmp_capabilities":
                        f.write(b'{"return": {}}\n')
                    elif msg["execute"] == "query-status":
                        f.write(b'{"event": "SUSPEND", "timestamp": {}}\n')
                        f.write(b'{"return": {"status": "suspended", "running": false}}\n')
                    else:
                        f.write(b'{"error": {"class": "GenericError", "desc": "nope"}}\n')
                    f.flush()

    threading.Thread(target=serve, daemon=True).start()
    assert qmp.status(sock_path) == "suspended"
    with pytest.raises(LabError, match="QMP: GenericError: nope"):
        qmp.command(sock_path, "system_wakeup")
    assert [m["execute"] for m in seen] == ["qmp_capabilities", "query-status",
                                             "qmp_capabilities", "system_wakeup"]  # fmt: skip
    server.close()
    with pytest.raises(LabError, match="QMP socket"):
        qmp.status(tmp_path / "absent.sock")


def test_arm64_ollama_build_has_its_own_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    amd, amd_sha = publish.build_ollama_tarball(tmp_path, "amd64")
    arm, arm_sha = publish.build_ollama_tarball(tmp_path, "arm64")
    assert amd.name.startswith("ollama-linux-amd64.") and arm.name.startswith("ollama-linux-arm64.")
    assert amd.suffixes == arm.suffixes and amd_sha != arm_sha
    monkeypatch.setattr(publish, "ollama_version", lambda: "0.9.6-standin")  # a .tgz release: readable here
    old, _ = publish.build_ollama_tarball(tmp_path / "old", "arm64")
    with tarfile.open(old) as tar:
        marker = tar.extractfile("lib/ollama/standin-arch")
        assert marker is not None and marker.read() == b"arm64\n"
        assert tar.getmember("bin/ollama").mode == 0o755
    amd_old, _ = publish.build_ollama_tarball(tmp_path / "old", "amd64")
    with tarfile.open(amd_old) as tar:
        assert "lib/ollama/standin-arch" not in tar.getnames()  # amd64 unchanged: inventories pin it


def _record(tmp_path: Path) -> LabRecord:
    image = tmp_path / "image"
    (image / "boot").mkdir(parents=True)
    for name in ("vmlinuz-6.1.0-40-amd64", "initrd.img-6.1.0-40-amd64"):
        (image / "boot" / name).write_text("")
    common = {"netns": "", "veth": "", "base": str(image)}
    machines = {
        "c1": MachineRecord(name="c1", address="192.168.77.10", mac="02:68:65:61:72:10",
                            dir=str(tmp_path / "c1"), **common),
        "v1": MachineRecord(name="v1", address="192.168.77.99", mac="02:68:65:61:72:99",
                            dir=str(tmp_path / "v1"), kind="vm", tap="hktap0", **common),
    }  # fmt: skip
    for m in machines.values():
        m.path.mkdir()
    return LabRecord(
        inventory="x", bridge="hearth-lan", bridge_created=False, host_cidr="192.168.77.1/24",
        broadcast="192.168.77.255", nft_table="t", ssh_user="hearth", ssh_port=22,
        ssh_key="k", known_hosts="kh", machines=machines,
    )  # fmt: skip


def test_a_machine_that_misses_sshd_shows_its_console_tail(tmp_path: Path) -> None:
    lab = _record(tmp_path)
    vm = lab.machines["v1"]
    vm.address = "127.0.0.1"  # nothing listens on the port below
    (vm.path / "console.log").write_text("".join(f"[ {i}.0] boot line {i}\n" for i in range(100))
                                         + "Kernel panic - not syncing: VFS: Unable to mount root fs\n")  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LabError) as caught:
        machine.wait_sshd(vm, port, timeout=0.3)
    text = str(caught.value)
    assert f"v1 (vm): sshd on 127.0.0.1:{port} not up after 0.3s; its console ends:" in text
    assert text.endswith("Kernel panic - not syncing: VFS: Unable to mount root fs")
    assert "boot line 99" in text and "boot line 50" not in text


NOLOGIN = ("Connection closed by 192.168.77.10 port 22\n"
           "System is booting up. Unprivileged users are not permitted to log in yet.")
CHANGED_KEY = "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed."
NO_KEY = "hearth@192.168.77.10: Permission denied (publickey)."


def _ssh_answers(monkeypatch: pytest.MonkeyPatch, answers: list[tuple[int, str]]) -> list[list[str]]:
    """Stand-in for the ssh client: each login gets the next (exit status, stderr); returns the argvs."""
    calls: list[list[str]] = []

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        rc, stderr = answers.pop(0) if len(answers) > 1 else answers[0]
        return subprocess.CompletedProcess(argv, rc, "", stderr)

    monkeypatch.setattr(wake.subprocess, "run", run)  # hearth.wake.attempt runs the ssh client
    monkeypatch.setattr(power_cli.time, "sleep", lambda s: None)
    return calls


def test_readiness_is_a_login_that_works_not_the_banner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd answers while /run/nologin still refuses the automation user (pam_nologin): wait it out."""
    lab = _record(tmp_path)
    calls = _ssh_answers(monkeypatch, [(255, NOLOGIN), (255, NOLOGIN), (0, "")])
    assert power_cli.wait_login(lab, lab.machines["v1"], timeout=60) >= 0
    assert len(calls) == 3
    assert all("StrictHostKeyChecking=yes" in argv and argv[-1] == "true" for argv in calls)


@pytest.mark.parametrize(("said", "error"), [
    (CHANGED_KEY, "v1: its SSH host key does not match kh"),
    (NO_KEY, "v1: sshd refuses hearth's login (waiting will not fix it); ssh said: hearth@192.168.77.10: "
             "Permission denied"),
])  # fmt: skip
def test_what_waiting_cannot_fix_is_an_error_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, said: str, error: str,
) -> None:
    """A changed host key (strict checking stays on) or a key the booted machine refuses: no retry."""
    lab = _record(tmp_path)
    calls = _ssh_answers(monkeypatch, [(255, said)])
    with pytest.raises(LabError, match=re.escape(error)):
        power_cli.wait_login(lab, lab.machines["v1"], timeout=60)
    assert len(calls) == 1, "never retried"


def test_a_login_that_never_works_says_what_ssh_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = _record(tmp_path)
    vm = lab.machines["v1"]
    (vm.path / "console.log").write_text("[ 1.0] still booting\n")
    _ssh_answers(monkeypatch, [(255, NOLOGIN)])
    with pytest.raises(LabError) as caught:
        power_cli.wait_login(lab, vm, timeout=0.2)
    text = str(caught.value)
    assert "v1: sshd answers but hearth cannot log in after 0.2s" in text
    assert "System is booting up" in text and text.endswith("still booting")


def test_two_waiters_on_one_boot_both_record_it(tmp_path: Path) -> None:
    """The lab daemon and `hearth lab up` wait for the same sshd at once (CI failed on it)."""
    lab = _record(tmp_path)
    vm = lab.machines["v1"]
    vm.address = "127.0.0.1"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        stop = threading.Event()

        def banner() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:  # the server closed at the end of the test
                    return
                with conn:
                    conn.sendall(b"SSH-2.0-test-banner\r\n")

        threading.Thread(target=banner, daemon=True).start()
        port = server.getsockname()[1]
        errors: list[BaseException] = []

        def wait() -> None:
            try:
                machine.wait_sshd(vm, port, timeout=10)
            except BaseException as e:  # collected for the assertion below
                errors.append(e)

        for _ in range(30):
            machine.get(vm).mark_booted()
            waiters = [threading.Thread(target=wait) for _ in range(4)]
            for t in waiters:
                t.start()
            for t in waiters:
                t.join()
            assert errors == []
            assert machine.read_boot(vm)["sshd_s"] is not None
        stop.set()
    assert not list(vm.path.glob("boot.json.*"))  # no temporary file left behind
