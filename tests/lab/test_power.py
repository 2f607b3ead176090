"""Power: `systemctl suspend` -> asleep; a real magic packet on the LAN -> awake again.

Kind-agnostic: a container is held powered off while asleep and boots on its packet,
a VM sleeps in S3 and resumes (tests/lab/test_vm_sleep.py shows what only a VM keeps).
"""

from __future__ import annotations

import time

import pytest

from hearth.lab import machine as lab_machine
from hearth.lab import magic, power_cli
from hearth.lab.harness import Lab
from hearth.lab.state import LabRecord, lab_root


def _ssh_answers(address: str, port: int) -> bool:
    return lab_machine.sshd_banner(address, port, wait=5)


def _sleeper(lab: Lab) -> str:
    sleepers = [m.name for m in lab.spec.machines if m.sleeps]
    if not sleepers:
        pytest.skip("no host in this inventory sleeps (sleep.sleeps)")
    return sleepers[0]


def _wait_for_boot_after(m: lab_machine.MachineRecord, sent: float, deadline_s: float) -> dict:
    """The boot record of the boot that began after ``sent``, once its sshd answered (bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        boot = lab_machine.read_boot(m)
        if float(boot.get("booted_at") or 0) >= sent - 0.5 and boot.get("sshd_s") is not None:
            return boot
        assert time.monotonic() < deadline, f"{m.name} did not boot after its magic packet: {boot}"
        time.sleep(0.1)


def _ssh_output(lab: Lab, name: str, command: str, deadline_s: float = 60) -> str:
    """Run ``command`` over SSH, retrying while sshd is still coming up (bounded by a deadline)."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = lab.host(name).run(command)
        if result.rc == 0:
            return str(result.stdout).strip()
        assert time.monotonic() < deadline, f"{name}: {command!r} failed: {result.stderr}"
        time.sleep(0.5)


def _send_from(lab: Lab, sender: str, payload: bytes, port: int, to: str | None = None) -> None:
    """Broadcast ``payload`` on the LAN from inside another lab machine (stock python3)."""
    code = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1);"
        f"s.sendto(bytes.fromhex(sys.argv[1]),('{to or lab.spec.broadcast}',{port}))"
    )
    lab.host(sender).check_output(f'python3 -c "{code}" {payload.hex()}')


def test_suspend_sleeps_and_a_magic_packet_from_the_lan_wakes_with_disk_intact(
    lab: Lab, lab_record: LabRecord
) -> None:
    name = _sleeper(lab)
    m = lab_record.machines[name]
    sender = next(x.name for x in lab.spec.machines if x.name != name)
    lab.host(name).check_output("echo survives-sleep | sudo tee /var/lib/hearth-sleep-marker")

    power_cli.sleep(lab_record, m)
    assert lab_machine.power_state(m) == "asleep"
    assert not _ssh_answers(m.address, lab_record.ssh_port)

    log = lab_root() / "daemon.log"
    seen = log.read_text().count("no lab machine has MAC 02:00:00:00:00:99")
    _send_from(lab, sender, b"not a magic packet" * 8, 9)
    _send_from(lab, sender, magic.build("02:00:00:00:00:99"), 9)  # someone else's MAC
    deadline = time.monotonic() + 30  # the controller handles packets in order: wait for the last one
    while log.read_text().count("no lab machine has MAC 02:00:00:00:00:99") == seen:
        assert time.monotonic() < deadline, "the power controller never saw the stray magic packet"
        time.sleep(0.1)
    assert lab_machine.power_state(m) == "asleep", "woke without its magic packet"

    sent = time.time()
    # the other WoL port, to the limited broadcast (the wakeonlan library's default)
    _send_from(lab, sender, magic.build(m.mac), 7, to="255.255.255.255")
    boot = _wait_for_boot_after(m, sent, deadline_s=lab_machine.boot_timeout(m))
    assert 0 < float(boot["sshd_s"] or 0) < lab_machine.boot_timeout(m)
    assert _ssh_output(lab, name, "cat /var/lib/hearth-sleep-marker") == "survives-sleep"


def test_hearth_lab_wake_sends_a_real_packet(lab: Lab, lab_record: LabRecord) -> None:
    name = _sleeper(lab)
    m = lab_record.machines[name]
    power_cli.sleep(lab_record, m)
    seconds = power_cli.wake(lab_record, m)
    assert lab_machine.power_state(m) == "on"
    assert 0 < seconds < lab_machine.boot_timeout(m)
    log = (lab_root() / "daemon.log").read_text()
    assert f"magic packet for {m.mac} from {lab_record.host_ip} on udp/9" in log
