"""Where the lab keeps things, and the record of what `lab up` created.

``lab.json`` under the lab root lists every object the lab made (bridge, nft
table, namespaces, veths, machine directories, daemon). `lab down` removes exactly
what it lists, so nothing the lab did not create is ever touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

DEFAULT_ROOT = Path("/var/lib/hearth-lab")
NFT_TABLE = os.environ.get("HEARTH_LAB_NFT_TABLE", "hearth_lab")


def lab_root() -> Path:
    """The lab's state directory (``HEARTH_LAB_ROOT`` overrides /var/lib/hearth-lab)."""
    return Path(os.environ.get("HEARTH_LAB_ROOT", str(DEFAULT_ROOT)))


def cache_dir() -> Path:
    """The image cache (``HEARTH_LAB_CACHE`` overrides ``<lab root>/cache``).

    Images are read-only lower layers, so several lab roots may share one cache.
    """
    return Path(os.environ.get("HEARTH_LAB_CACHE", str(lab_root() / "cache")))


@dataclass
class MachineRecord:
    """One machine as created: its network plumbing and its directory."""

    name: str
    address: str
    mac: str
    netns: str
    veth: str
    dir: str
    base: str
    sleeps: bool = False
    kind: str = "container"
    arch: str = "amd64"
    memory_mb: int = 1024
    cpus: int = 2
    tap: str = ""

    @property
    def path(self) -> Path:
        """The machine's directory (upper layer, rootfs mount point, control files)."""
        return Path(self.dir)


@dataclass
class LabRecord:
    """Everything one `lab up` created, persisted as lab.json."""

    inventory: str
    bridge: str
    bridge_created: bool
    host_cidr: str
    broadcast: str
    nft_table: str
    ssh_user: str
    ssh_port: int
    ssh_key: str
    known_hosts: str
    machines: dict[str, MachineRecord] = field(default_factory=dict)

    @property
    def host_ip(self) -> str:
        """This machine's address on the bridge."""
        return self.host_cidr.split("/")[0]

    def save(self, root: Path | None = None) -> None:
        """Write lab.json atomically."""
        path = record_path(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def record_path(root: Path | None = None) -> Path:
    """Path of lab.json."""
    return (root or lab_root()) / "lab.json"


def load_record(root: Path | None = None) -> LabRecord | None:
    """The current lab record, or None when no lab is up."""
    path = record_path(root)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    machines = {k: MachineRecord(**v) for k, v in data.pop("machines", {}).items()}
    return LabRecord(**data, machines=machines)


_lock_depth = 0
_lock_file: IO[str] | None = None


@contextmanager
def exclusive(root: Path | None = None) -> Iterator[None]:
    """Hold the lab's lock: one `up`/`down`/test session changes the lab at a time.

    Re-entrant within a process (the test fixture holds it around `up`/`down`).
    """
    global _lock_depth, _lock_file
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    path = (root or lab_root()) / ".lock"
    with flock_held(path, "another lab session") as f:
        _lock_file, _lock_depth = f, 1
        try:
            yield
        finally:
            _lock_depth, _lock_file = 0, None


@contextmanager
def flock_held(path: Path, holder: str) -> Iterator[IO[str]]:
    """Hold an exclusive ``flock`` on ``path`` (made if missing), saying on stderr that
    we wait for ``holder`` when another process has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"--> Waiting for {holder} (lock {path})", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
