"""The lab's power controller: Wake-on-LAN in, suspend requests out.

It listens on the LAN bridge for magic packets (UDP 9 and 7, broadcast) and wakes
the machine whose MAC they name if it is off or asleep: whatever its kind, through
:meth:`hearth.lab.machine.Machine.wake` (a suspended VM resumes through QMP, a VM
or container that is off boots). A container that runs `systemctl suspend` drops a
request in its control directory; the controller then powers it off and marks it
asleep (a VM suspends itself, for real). Both go through the same machine objects
as `hearth lab up`, so a woken machine is the same machine with the same disk.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from pathlib import Path

from hearth.lab import machine, magic
from hearth.lab.state import LabRecord, MachineRecord, load_record

log = logging.getLogger("hearth.lab.power")
WOL_PORTS = (9, 7)


class PowerController:
    """Wake-on-LAN listener and suspend watcher for the lab in ``root``."""

    def __init__(self, root: Path, bridge: str) -> None:
        self.root = root
        self.bridge = bridge
        self.stopping = threading.Event()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._children: list[subprocess.Popen[bytes]] = []

    def lab(self) -> LabRecord | None:
        """The current lab record (re-read: `lab up` may add machines)."""
        return load_record(self.root)

    def start(self) -> None:
        """Start the listener threads and the suspend watcher."""
        for port in WOL_PORTS:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.bridge.encode())
            sock.bind(("", port))
            threading.Thread(target=self._listen, args=(sock, port), daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _listen(self, sock: socket.socket, port: int) -> None:
        while not self.stopping.is_set():
            data, (src, _) = sock.recvfrom(2048)
            mac = magic.parse(data)
            if mac is None:
                log.info("udp/%d from %s: not a magic packet (%d bytes)", port, src, len(data))
                continue
            log.info("magic packet for %s from %s on udp/%d", mac, src, port)
            self.wake_mac(mac)

    def wake_mac(self, mac: str) -> None:
        """Wake the machine with ``mac`` unless it is on (or already waking)."""
        lab = self.lab()
        target = next((m for m in (lab.machines.values() if lab else ()) if m.mac == mac), None)
        if target is None or lab is None:
            log.info("no lab machine has MAC %s; ignored", mac)
            return
        self._start_wake(target, lab.ssh_port, "Wake-on-LAN")

    def _start_wake(self, m: MachineRecord, port: int, why: str) -> None:
        with self._lock:
            if m.name in self._busy:
                return
            self._busy.add(m.name)
        threading.Thread(target=self._wake, args=(m, port, why), daemon=True).start()

    def _wake(self, m: MachineRecord, port: int, why: str) -> None:
        mach = machine.get(m)
        try:
            (m.path / machine.POWER_ON_REQUEST).unlink(missing_ok=True)
            state = mach.state()
            if state == "on":
                log.info("%s is already on", m.name)
                return
            proc = mach.wake()
            if proc is not None:
                with self._lock:
                    self._children.append(proc)
            verb = "resumed" if state == "asleep" and proc is None else "powered on"
            log.info("%s (%s): %s by %s", m.name, mach.kind, verb, why)
            seconds = machine.wait_sshd(m, port, timeout=machine.boot_timeout(m))
            log.info("%s: sshd up %.2fs after %s", m.name, seconds,
                     "resume" if verb == "resumed" else "power-on")  # fmt: skip
        except Exception:
            log.exception("%s: wake failed", m.name)
        finally:
            with self._lock:
                self._busy.discard(m.name)

    def _watch(self) -> None:
        while not self.stopping.wait(0.25):
            self._reap()
            lab = self.lab()
            for m in lab.machines.values() if lab else ():
                mach = machine.get(m)
                if mach.suspend_requested():
                    self._suspend(mach)
                if (m.path / machine.POWER_ON_REQUEST).exists():
                    self._start_wake(m, lab.ssh_port, "request")

    def _reap(self) -> None:
        with self._lock:
            self._children = [p for p in self._children if p.poll() is None]

    def _suspend(self, mach: machine.Machine) -> None:
        with self._lock:
            if mach.name in self._busy:
                return
            self._busy.add(mach.name)
        try:
            start = time.monotonic()
            mach.suspend()
            log.info("%s: suspended -> powered off (%.1fs)", mach.name, time.monotonic() - start)
        except Exception:
            log.exception("%s: suspend handling failed", mach.name)
        finally:
            with self._lock:
                self._busy.discard(mach.name)
