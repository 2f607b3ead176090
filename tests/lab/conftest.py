"""Lab harness: testinfra checks over SSH against the hosts an inventory names.

Default: build the local lab from ``inventory/lab.yml`` once per session, run the
converge -> idempotence cycle (hearth.lab.cycle), check, then tear the lab down
(kept with ``--keep-lab`` or ``HEARTH_KEEP_LAB=1``).

``--hearth-inventory PATH`` checks the hosts of another inventory (a real lab):
nothing is built or deployed unless ``--hearth-lab`` / ``--hearth-deploy`` ask.
``--hearth-lab-ready`` checks a local lab that `hearth lab deploy` already made.
Strict host-key checking is always on, with the inventory's ``ssh.known_hosts``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from hearth.lab import cycle, lifecycle
from hearth.lab.harness import Lab, close_connections
from hearth.lab.spec import load_spec
from hearth.lab.state import LabRecord, exclusive, lab_root, load_record

DEFAULT_INVENTORY = cycle.REPO / "inventory" / "lab.yml"
# What the session's lab cost: seconds to bring it up (None: not built here), and its cycle.
SESSION_COST = pytest.StashKey[tuple[float | None, cycle.CycleResult | None]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hearth lab")
    group.addoption("--hearth-inventory", type=Path, default=None,
                    help="check the hosts of this inventory (default: build the lab from lab.yml)")
    group.addoption("--hearth-lab", action="store_true",
                    help="build the local lab from --hearth-inventory (default only for lab.yml)")
    group.addoption("--hearth-lab-ready", action="store_true",
                    help="the local lab is already up and deployed: only check it")
    group.addoption("--hearth-deploy", action="store_true",
                    help="run the converge/idempotence cycle against --hearth-inventory too")
    group.addoption("--keep-lab", action="store_true",
                    help="leave the lab up after the session (also HEARTH_KEEP_LAB=1)")  # fmt: skip


def _opt(config: pytest.Config, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:  # options not registered (conftest not an initial one)
        return None


def _inventory(config: pytest.Config) -> Path:
    return (_opt(config, "--hearth-inventory") or DEFAULT_INVENTORY).resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``machine`` over the inventory's Linux hosts (no lab needed yet)."""
    if "machine" in metafunc.fixturenames:
        names = [m.name for m in load_spec(_inventory(metafunc.config)).machines]
        metafunc.parametrize("machine", names)


def _skip_unless_lab_can_run() -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, bridge, systemd-nspawn)")
    if shutil.which("systemd-nspawn") is None:
        pytest.skip("systemd-nspawn missing: apt-get install systemd-container")


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """Build (local lab) and deploy once per session; tear down unless asked to keep it."""
    config = request.config
    inventory = _inventory(config)
    ready = bool(_opt(config, "--hearth-lab-ready"))
    build = not ready and (
        inventory == DEFAULT_INVENTORY.resolve() or bool(_opt(config, "--hearth-lab"))
    )
    local = build or ready
    keep = bool(_opt(config, "--keep-lab")) or os.environ.get("HEARTH_KEEP_LAB") == "1"
    result = None
    if local:
        _skip_unless_lab_can_run()
    # One session at a time changes the local lab: another pytest waits here.
    with exclusive() if build else nullcontext():
        try:
            start = time.monotonic()
            if build:
                lifecycle.up(inventory)  # inside: a machine that never boots still leaves no lab up
            up_s = time.monotonic() - start if build else None
            if build or _opt(config, "--hearth-deploy"):
                result = cycle.converge_and_check_idempotence(inventory)
            config.stash[SESSION_COST] = (up_s, result)
            lab = Lab(inventory, load_spec(inventory), local, result)
            yield lab
        finally:
            close_connections()
            if build and not keep:
                lifecycle.down()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line on what the session's lab cost (CI's logs show where a shape's time went)."""
    up_s, result = config.stash.get(SESSION_COST, (None, None))
    parts = [f"up {up_s:.1f} s"] if up_s is not None else []
    if result is not None:
        parts += [f"converge {result.converge.seconds:.1f} s ({result.converge.totals.get('success', 0)} changes)",
                  f"no-op re-run {result.noop.seconds:.1f} s (0 changes)"]
    if parts:
        terminalreporter.write_line(f"hearth lab {_inventory(config).name}: {', '.join(parts)}")


@pytest.fixture(scope="module")
def inv(lab: Lab) -> Any:
    """The inventory under test, for the modules about the gateway: they are skipped, with
    the reason, when it has none. A module that needs another view defines its own ``inv``."""
    from hearth.deploy_data import group_defaults
    from hearth.inventory import load_inventory

    inventory = load_inventory(lab.inventory, group_defaults())
    if inventory.gateway is None:
        pytest.skip("no gateway in this inventory")
    return inventory


@pytest.fixture
def lab_record(lab: Lab) -> LabRecord:
    """The local lab's record (its machines, their kinds and MACs, the SSH port), for the
    checks that drive the lab's power control; skipped on a real lab, whose sleepers the
    gateway tests check."""
    if not lab.local:
        pytest.skip("lab power control (a real lab's sleepers are checked by the gateway tests)")
    record = load_record(lab_root())
    assert record is not None, f"no lab record under {lab_root()}"
    return record


@pytest.fixture
def host(lab: Lab, machine: str) -> Any:
    """The testinfra host of the parametrized ``machine``."""
    return lab.host(machine)
