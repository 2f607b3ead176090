"""Real sleep, which only a VM has: S3 keeps memory, so processes and uptime survive.

For each sleeping host the lab built as a VM: `systemctl suspend` inside puts it in
S3 (QMP says ``suspended``; the QEMU process stays, SSH stops answering), a real
magic packet from another machine on the LAN resumes it through QMP, and it is the
same running system: same boot id, same PIDs, uptime continuing. Then the gateway's
wake path against a really suspended VM: one request, held, answered. The timings
print as ``vm-sleep: ...`` lines (docs/lab.md records them).
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest

from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory, resolve_secret
from hearth.lab import machine as lab_machine
from hearth.lab import magic, power_cli, qmp
from hearth.lab.harness import Lab
from hearth.lab.state import LabRecord, MachineRecord
from tests.lab.admin_api import upstream_state

pytestmark = pytest.mark.lab


def _vm_sleeper(lab: Lab, record: LabRecord) -> MachineRecord:
    names = [m.name for m in lab.spec.machines if m.sleeps and m.kind == "vm"]
    if not names:
        pytest.skip("no sleeping host is a VM in this lab (hosts.<name>.lab.kind: vm)")
    return record.machines[names[0]]


def _ssh_answers(address: str, port: int, wait: float = 15.0) -> bool:
    return lab_machine.sshd_banner(address, port, wait=wait)


def _until(check: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout}s"
        time.sleep(0.2)
    return time.monotonic() - start


def _running_state(h: Any) -> dict[str, str]:
    probe = h.check_output("systemctl show -p MainPID --value hearth-sleep-probe")
    return {
        "boot_id": h.check_output("cat /proc/sys/kernel/random/boot_id"),
        "sshd": h.check_output("systemctl show -p MainPID --value ssh"),
        "probe": probe,
        "probe_alive": h.check_output(f"test -d /proc/{probe} && echo yes || echo no"),
        "uptime": h.check_output("cut -d' ' -f1 /proc/uptime"),
    }


def _broadcast_from(lab: Lab, sender: str, payload: bytes, port: int = 9) -> None:
    code = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1);"
        f"s.sendto(bytes.fromhex(sys.argv[1]),('{lab.spec.broadcast}',{port}))"
    )
    lab.host(sender).check_output(f'python3 -c "{code}" {payload.hex()}')


def test_vm_sleeps_in_s3_and_wakes_with_its_processes(lab: Lab, lab_record: LabRecord) -> None:
    m = _vm_sleeper(lab, lab_record)
    h = lab.host(m.name)
    sender = next(x.name for x in lab.spec.machines if x.name != m.name and not x.sleeps)
    h.check_output("sudo systemd-run --unit=hearth-sleep-probe --quiet sleep 100000")
    try:
        before = _running_state(h)
        qemu = lab_machine.pid(m)
        assert before["probe_alive"] == "yes" and qemu is not None

        asleep_s = power_cli.sleep(lab_record, m)  # `sudo systemctl suspend` inside, over SSH
        unreachable_s = asleep_s + _until(lambda: not _ssh_answers(m.address, lab_record.ssh_port), 30,
                                          "SSH stops answering")  # fmt: skip
        assert qmp.status(m.path / "qmp.sock") == "suspended"
        assert lab_machine.pid(m) == qemu, "a suspended VM keeps its QEMU process"

        sent = time.monotonic()  # includes the sender's own SSH round trip: an upper bound
        _broadcast_from(lab, sender, magic.build(m.mac))
        _until(lambda: _ssh_answers(m.address, lab_record.ssh_port), lab_machine.boot_timeout(m),
               "SSH after the magic packet")  # fmt: skip
        wake_s = time.monotonic() - sent
        assert lab_machine.power_state(m) == "on"
        assert lab_machine.read_boot(m).get("resumed") is True

        after = _running_state(h)
        assert after["boot_id"] == before["boot_id"], "a resume is not a reboot"
        assert (after["sshd"], after["probe"], after["probe_alive"]) == (before["sshd"], before["probe"], "yes")
        assert float(after["uptime"]) > float(before["uptime"])
        print(f"\nvm-sleep: {m.name} suspend -> asleep (QMP suspended) {asleep_s:.2f}s, "
              f"-> SSH unreachable {unreachable_s:.2f}s; magic packet -> SSH {wake_s:.2f}s")  # fmt: skip
    finally:
        if lab_machine.power_state(m) == "on":
            h.run("sudo systemctl stop hearth-sleep-probe")


def test_gateway_wakes_a_really_suspended_vm_and_streams_the_answer(lab: Lab, lab_record: LabRecord) -> None:
    m = _vm_sleeper(lab, lab_record)
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None or not inv.clients:
        pytest.skip("no gateway (or no client key) in this inventory")
    route = next(iter(inv.hosts[m.name].serves[0].routes), None)
    if route is None:
        pytest.skip(f"{m.name} serves no route through the gateway")
    client = next(n for n, h in inv.hosts.items()
                  if h.os == "linux" and n not in (m.name, inv.gateway.host) and not h.sleep.sleeps)  # fmt: skip
    key = resolve_secret(next(iter(inv.clients.values())).key)
    gw = inv.hosts[inv.gateway.host]
    h = lab.host(m.name)
    boot_id = h.check_output("cat /proc/sys/kernel/random/boot_id")

    power_cli.sleep(lab_record, m)
    assert qmp.status(m.path / "qmp.sock") == "suspended"
    gateway = lab.host(inv.gateway.host)
    def known_asleep() -> bool:
        return upstream_state(gateway, inv, m.name) == "asleep"

    _until(known_asleep, 60, "the gateway marks the suspended VM asleep (its probe never wakes it)")
    assert qmp.status(m.path / "qmp.sock") == "suspended"
    body = {"model": f"{inv.routing.alias_prefix}/{route}", "stream": True,
            "messages": [{"role": "user", "content": "implement a function"}]}  # fmt: skip
    args = ["curl", "-sS", "-m", "150", "-o", "/dev/null", "-w", "%{http_code} %{time_starttransfer}",
            "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
            "-d", json.dumps(body), f"http://{gw.overlay_ip}:{inv.gateway.port}/v1/chat/completions"]  # fmt: skip
    status, first_byte = lab.host(client).check_output(" ".join(shlex.quote(a) for a in args)).split()
    assert status == "200"
    assert lab_machine.power_state(m) == "on"
    assert lab_machine.read_boot(m).get("resumed") is True
    assert h.check_output("cat /proc/sys/kernel/random/boot_id") == boot_id, "resumed, not rebooted"
    print(f"\nvm-sleep: request to a suspended {m.name} through the gateway -> first token "
          f"{float(first_byte):.2f}s (magic packet, resume, answer)")  # fmt: skip
