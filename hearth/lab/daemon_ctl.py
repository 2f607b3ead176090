"""Start, find and stop the lab daemon process."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

from hearth.lab.sh import LabError, run
from hearth.lab.spec import ARTIFACT_PORT
from hearth.lab.state import LabRecord


def pid(root: Path) -> int | None:
    """The daemon's pid if it is running, else None."""
    try:
        value = int((root / "daemon.pid").read_text())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
        stat = Path(f"/proc/{value}/stat").read_text()
    except (OSError, ValueError):
        return None
    if b"hearth.lab.daemon" not in cmdline or stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return value


def ensure_running(root: Path, lab: LabRecord) -> None:
    """Start the daemon detached unless it runs; wait until it serves."""
    if pid(root) is None:
        argv = [sys.executable, "-m", "hearth.lab.daemon", str(root)]
        cmd = " ".join(shlex.quote(a) for a in argv)
        pidfile, logf = root / "daemon.pid", root / "daemon.log"
        script = f"echo $$ > {shlex.quote(str(pidfile))}; exec {cmd} </dev/null >>{logf} 2>&1"
        env = {**os.environ, "PYTHONPATH": _package_parent()}
        run(["setsid", "-f", "sh", "-c", script], env=env)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection((lab.host_ip, ARTIFACT_PORT), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise LabError(f"lab daemon did not come up; see {root / 'daemon.log'}") from None
            time.sleep(0.05)


def _package_parent() -> str:
    here = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)


def stop(root: Path) -> bool:
    """SIGTERM the daemon and wait; True if one was running."""
    p = pid(root)
    if p is None:
        return False
    os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid(root) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid(root) is not None:
        os.kill(p, signal.SIGKILL)
    (root / "daemon.pid").unlink(missing_ok=True)
    return True
