"""Power: `systemctl suspend` -> asleep; a real magic packet on the LAN -> booted."""

from __future__ import annotations

import time

import pytest

from hearth.lab import machine as lab_machine
from hearth.lab import magic, power_cli
from hearth.lab.harness import Lab
from hearth.lab.state import LabRecord, lab_root, load_record


@pytest.fixture
def record(lab: Lab) -> LabRecord:
    if not lab.local:
        pytest.skip("lab power control (a real lab's sleepers are checked by the gateway tests)")
    rec = load_record(lab_root())
    assert rec is not None
    return rec


def _sleeper(lab: Lab) -> str:
    return next(m.name for m in lab.spec.machines if m.sleeps)


def _send_from(lab: Lab, sender: str, payload: bytes, port: int, to: str | None = None) -> None:
    """Broadcast ``payload`` on the LAN from inside another lab machine (stock python3)."""
    code = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1);"
        f"s.sendto(bytes.fromhex(sys.argv[1]),('{to or lab.spec.broadcast}',{port}))"
    )
    lab.host(sender).check_output(f'python3 -c "{code}" {payload.hex()}')


def test_suspend_sleeps_and_a_magic_packet_from_the_lan_wakes_with_disk_intact(
    lab: Lab, record: LabRecord
) -> None:
    name = _sleeper(lab)
    m = record.machines[name]
    sender = next(x.name for x in lab.spec.machines if x.name != name)
    lab.host(name).check_output("echo survives-sleep | sudo tee /var/lib/hearth-sleep-marker")

    power_cli.sleep(record, m)
    assert lab_machine.power_state(m) == "asleep"
    assert lab_machine.pid(m) is None

    _send_from(lab, sender, b"not a magic packet" * 8, 9)
    _send_from(lab, sender, magic.build("02:00:00:00:00:99"), 9)  # someone else's MAC
    time.sleep(1.0)
    assert lab_machine.power_state(m) == "asleep", "woke without its magic packet"

    sent = time.time()
    # the other WoL port, to the limited broadcast (the wakeonlan library's default)
    _send_from(lab, sender, magic.build(m.mac), 7, to="255.255.255.255")
    deadline = time.monotonic() + 60
    while lab_machine.read_boot(m).get("sshd_s") is None or lab_machine.pid(m) is None:
        assert time.monotonic() < deadline, f"{name} did not boot after its magic packet"
        time.sleep(0.1)
    boot = lab_machine.read_boot(m)
    assert float(boot["booted_at"] or 0) >= sent - 0.5
    assert 0 < float(boot["sshd_s"] or 0) < 60
    assert lab.host(name).check_output("cat /var/lib/hearth-sleep-marker") == "survives-sleep"


def test_hearth_lab_wake_sends_a_real_packet(lab: Lab, record: LabRecord) -> None:
    name = _sleeper(lab)
    m = record.machines[name]
    power_cli.sleep(record, m)
    seconds = power_cli.wake(record, m)
    assert lab_machine.power_state(m) == "on"
    assert 0 < seconds < 60
    log = (lab_root() / "daemon.log").read_text()
    assert f"magic packet for {m.mac} from {record.host_ip} on udp/9" in log
