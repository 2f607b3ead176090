"""What lab tests get: an inventory's hosts over SSH with strict host keys.

Used by ``tests/lab/conftest.py``; kept here so test modules import it as
``hearth.lab.harness`` rather than from a conftest.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import testinfra

from hearth.lab.cycle import CycleResult
from hearth.lab.spec import LabSpec


@dataclass
class Lab:
    """The inventory under test, its hosts, and what this session deployed."""

    inventory: Path
    spec: LabSpec
    local: bool
    result: CycleResult | None

    def host(self, name: str) -> Any:
        """A testinfra host for ``name``: ssh as the automation user, strict host keys."""
        m = self.spec.machine(name)
        # One multiplexed connection per host: checks cost a round trip, not a handshake.
        extra = (
            f"-o UserKnownHostsFile={self.spec.known_hosts} -o StrictHostKeyChecking=yes "
            "-o BatchMode=yes -o ConnectTimeout=10 -o ControlMaster=auto "
            f"-o ControlPersist=30s -o ControlPath={_control_dir()}/%C"
        )
        return testinfra.get_host(
            f"ssh://{self.spec.ssh_user}@{m.address}:{self.spec.ssh_port}",
            ssh_identity_file=str(self.spec.ssh_key),
            ssh_extra_args=extra,
        )

    def close(self) -> None:
        """Stop this process's ssh connection masters (before the machines go away)."""
        close_connections()


def close_connections() -> None:
    """Ask every ssh control master this process started to exit."""
    directory = Path(_control_dir())
    for sock in directory.iterdir():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab"],
                       capture_output=True, check=False, timeout=10)  # fmt: skip


@functools.cache
def _control_dir() -> str:
    """A private directory for this process's ssh control sockets (short: socket path limit)."""
    return tempfile.mkdtemp(prefix="hl-ssh-", dir="/tmp")
