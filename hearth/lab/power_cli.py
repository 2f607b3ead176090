"""`hearth lab sleep` / `hearth lab wake`: real suspend, real magic packets."""

from __future__ import annotations

import time

import wakeonlan

from hearth.lab import machine
from hearth.lab.sh import LabError, run
from hearth.lab.state import LabRecord, MachineRecord
from hearth.wake import attempt


def ssh_argv(lab: LabRecord, m: MachineRecord, command: str) -> list[str]:
    """An ssh command to ``m`` as the automation user, strict host-key checking on."""
    return [
        "ssh", "-i", lab.ssh_key, "-p", str(lab.ssh_port),
        "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        f"{lab.ssh_user}@{m.address}", command,
    ]  # fmt: skip


def ssh_login(lab: LabRecord, m: MachineRecord, *, timeout: float = 30.0) -> tuple[str, str]:
    """One fresh SSH login as the lab's automation user running ``true``: (state, ssh's stderr).

    The state is :func:`hearth.wake.classify`'s: ``ok``, ``wait`` (booting, a dropped
    connection, no answer), ``refused`` or ``host key``.
    """
    state, stderr = attempt(ssh_argv(lab, m, "true"), timeout)
    return state, stderr.strip()


def wait_login(lab: LabRecord, m: MachineRecord, *, timeout: float) -> float:
    """Wait until the automation user can log in to ``m``; return the seconds it took.

    sshd answers before the boot lets anyone but root in: until systemd-user-sessions
    runs, ``/run/nologin`` exists and pam_nologin refuses every other login (ssh.service
    is not ordered after it). A deploy that connects in that window fails with
    "Authentication failed" (CI saw it on a busy machine), so readiness is a login that
    works, not a banner. A host key that does not match is an error at once, never retried,
    and so is a login the booted machine refuses (a key it does not take): waiting cannot fix it.
    """
    start = time.monotonic()
    while True:
        state, said = ssh_login(lab, m)
        if state == "ok":
            return time.monotonic() - start
        if state == "host key":
            raise LabError(f"{m.name}: its SSH host key does not match {lab.known_hosts}:\n{said}")
        if state == "refused":
            raise LabError(f"{m.name}: sshd refuses {lab.ssh_user}'s login (waiting will not fix it); "
                           f"ssh said: {said or 'nothing'}")
        if time.monotonic() - start > timeout:
            raise LabError(f"{m.name}: sshd answers but {lab.ssh_user} cannot log in after {timeout:g}s "
                           f"(ssh said: {said or 'nothing'}); its console ends:\n{machine.get(m).console_log()}")
        time.sleep(0.5)


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
