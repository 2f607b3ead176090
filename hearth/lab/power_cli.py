"""`hearth lab sleep` / `hearth lab wake`: real suspend, real magic packets."""

from __future__ import annotations

import time

import wakeonlan

from hearth.lab import machine
from hearth.lab.sh import LabError, run
from hearth.lab.state import LabRecord, MachineRecord


def ssh_argv(lab: LabRecord, m: MachineRecord, command: str) -> list[str]:
    """An ssh command to ``m`` as the automation user, strict host-key checking on."""
    return [
        "ssh", "-i", lab.ssh_key, "-p", str(lab.ssh_port),
        "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        f"{lab.ssh_user}@{m.address}", command,
    ]  # fmt: skip


def sleep(lab: LabRecord, m: MachineRecord, *, timeout: float = 30.0) -> float:
    """Suspend ``m`` from inside (`systemctl suspend`); wait until it is asleep.

    A VM then sleeps in S3; a container is held powered off by the lab. The SSH
    session may be cut by the suspend itself, so its exit status alone decides nothing.
    """
    state = machine.power_state(m)
    if state != "on":
        raise LabError(f"{m.name} is {state}, not on")
    start = time.monotonic()
    said = run(ssh_argv(lab, m, "sudo systemctl suspend"), check=False, timeout=30)
    while machine.power_state(m) != "asleep":
        if time.monotonic() - start > timeout:
            raise LabError(
                f"{m.name} did not go to sleep within {timeout}s (is the lab daemon up?); "
                f"`systemctl suspend` over ssh exited {said.returncode}: {said.stderr.strip()[-500:]}"
            )
        time.sleep(0.1)
    return time.monotonic() - start


def send_magic_packet(lab: LabRecord, m: MachineRecord) -> None:
    """Broadcast a magic packet for ``m`` on the lab LAN (UDP 9, from the bridge address)."""
    wakeonlan.wake(m.mac, host=lab.broadcast, port=9, interface=lab.host_ip)


def wake(lab: LabRecord, m: MachineRecord, *, timeout: float | None = None) -> float:
    """Wake ``m`` with a magic packet; wait for its sshd; return seconds packet -> sshd."""
    timeout = timeout or machine.boot_timeout(m)
    sent = time.time()
    send_magic_packet(lab, m)
    while True:
        boot = machine.read_boot(m)
        if (boot.get("booted_at") or 0) >= sent - 0.5 and boot.get("sshd_s") is not None:
            return time.time() - sent
        if time.time() - sent > timeout:
            raise LabError(f"{m.name} did not answer on ssh within {timeout}s of the magic packet")
        time.sleep(0.1)
