"""Checks for real Windows GPU boxes, over SSH with PowerShell (testinfra's SSH backend).

Nothing runs unless pointed at an inventory:

    pytest tests/windows --windows-inventory inventory/<lab>.yml      (or HEARTH_WINDOWS_INVENTORY)

Each ``os: windows`` host of that inventory is checked after a deploy: sshd, the
WoL flags, the power plan, Ollama's environment, the firewall's scope. A host whose
SSH port does not answer (asleep: wake it with `hearth wake`) is skipped. Strict
host-key checking is on, with the inventory's ``ssh.known_hosts``. There is no
Windows machine in CI: there every test here skips.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("hearth windows").addoption(
        "--windows-inventory", type=Path, default=None,
        help="check the os: windows hosts of this inventory over SSH (default: skip)")


def _inventory_path(config: pytest.Config) -> Path | None:
    try:
        value = config.getoption("--windows-inventory")
    except ValueError:
        value = None
    value = value or os.environ.get("HEARTH_WINDOWS_INVENTORY")
    return Path(value) if value else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "windows_host" in metafunc.fixturenames:
        path = _inventory_path(metafunc.config)
        names = load_inventory(path, group_defaults()).windows_hosts() if path else []
        metafunc.parametrize("windows_host", names or [pytest.param(None, marks=pytest.mark.skip(
            reason="no Windows host: pass --windows-inventory with os: windows hosts"))])


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> Inventory:
    path = _inventory_path(request.config)
    if path is None:
        pytest.skip("no --windows-inventory given")
    return load_inventory(path, group_defaults())


@pytest.fixture
def box(inventory: Inventory, windows_host: str) -> Any:
    """A testinfra host for ``windows_host`` over SSH, or a skip when its SSH port is silent."""
    import testinfra

    host = inventory.hosts[windows_host]
    port = host.ssh_port or inventory.ssh.port
    try:
        socket.create_connection((host.address, port), timeout=3).close()
    except OSError:
        pytest.skip(f"{windows_host} ({host.address}:{port}) does not answer SSH (asleep? hearth wake)")
    known = Path(inventory.ssh.known_hosts or "~/.ssh/known_hosts").expanduser()
    extra = f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10"
    kwargs: dict[str, Any] = {"ssh_extra_args": extra}
    if inventory.ssh.key:
        kwargs["ssh_identity_file"] = str(Path(inventory.ssh.key).expanduser())
    user = host.ssh_user or inventory.ssh.user
    return testinfra.get_host(f"ssh://{user}@{host.address}:{port}", **kwargs)
