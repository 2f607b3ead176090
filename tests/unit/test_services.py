"""hearth.operations.services.service against pyinfra's systemd.service.

For any state of a unit (running or not, loaded or not, its unit file enabled, disabled,
static, masked, an alias, missing, or not listed as an instance of a template is not) and
any wish, the operation must run exactly ``systemd.service``'s commands, and none when
the unit is already as wanted: both are planned against a model host (pyinfra's ``host``
replaced by a stand-in answering facts as systemd does). The reads shared by many units
here are fresh ones; how a read is kept, and read again once something changed, runs for
real in test_config_files.py (both go through hearth.operations.reads.holds).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyinfra.api import StringCommand
from pyinfra.operations import systemd

from hearth.operations import services

UNIT = "ollama.service"
INSTANCE = "wg-quick@wg0.service"  # systemctl list-unit-files lists its template, never it
OTHERS = {"ssh.service": ("running", "enabled"), "cron.service": ("dead", "disabled")}


@dataclass
class ModelHost:
    """pyinfra's ``host``: one unit as systemd reports it. ``running`` None: not loaded
    (``systemctl show '*'`` leaves it out; asked by name it is loaded, and dead);
    ``file_state``: its unit file's state (None: no unit file); ``systemctl
    list-unit-files`` lists it unless it is an instance of a template."""

    unit: str
    running: bool | None
    file_state: str | None
    asked: list[tuple[str, Any]] = field(default_factory=list)

    def get_fact(self, cls: Any, **kwargs: Any) -> dict[str, Any]:
        by_name = kwargs.get("services")
        self.asked.append((cls.__name__, by_name))
        enabled = self.file_state in ("enabled", "static")
        if cls.__name__ == "UnitFileStates":
            files = {name: state for name, (_, state) in OTHERS.items()}
            listed = self.file_state is not None and "@" not in self.unit
            return {**files, **({self.unit: self.file_state} if listed else {})}
        if by_name:  # systemctl show UNIT: loaded to answer, whatever its state
            return {self.unit: bool(self.running) if cls.__name__ == "SystemdStatus" else enabled}
        # systemctl show '*': loaded units only
        if cls.__name__ == "SystemdStatus":
            loaded = {name: sub == "running" for name, (sub, _) in OTHERS.items()}
            return {**loaded, **({self.unit: self.running} if self.running is not None else {})}
        loaded = {name: state in ("enabled", "static") for name, (_, state) in OTHERS.items()}
        return {**loaded, **({self.unit: enabled} if self.running is not None else {})}

    def noop(self, message: str) -> None:
        pass


@contextmanager
def model(running: bool | None, file_state: str | None, unit: str = UNIT) -> Iterator[ModelHost]:
    """Inside the block pyinfra's ``host`` is a :class:`ModelHost`, and a read through
    ``holds`` is a fresh read."""
    fake = ModelHost(unit, running, file_state)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(systemd, "host", fake)
        patch.setattr(services, "holds", lambda fact, right, **arguments: right(fake.get_fact(fact, **arguments)))
        yield fake


def commands(generator: Any) -> list[str]:
    return [c.get_raw_value() if isinstance(c, StringCommand) else str(c) for c in generator]


WISHES = st.none() | st.booleans()
FILE_STATES = st.sampled_from([None, "enabled", "disabled", "static", "masked", "alias", "indirect",
                               "enabled-runtime", "generated"])


@given(running=WISHES, file_state=FILE_STATES, want_running=WISHES, want_enabled=WISHES,
       name=st.sampled_from(["ollama", UNIT, INSTANCE]))
def test_a_unit_changes_exactly_as_systemd_service_changes_it(running: bool | None, file_state: str | None,
                                                              want_running: bool | None, want_enabled: bool | None,
                                                              name: str) -> None:
    unit = services.unit_name(name)
    with model(running, file_state, unit):
        pyinfras = commands(systemd.service._inner(service=name, running=want_running, enabled=want_enabled))
    with model(running, file_state, unit) as fake:
        ours = commands(services.service._inner(service=name, running=want_running, enabled=want_enabled))
    assert ours == pyinfras
    not_loaded_instance = "@" in unit and running is None and want_enabled is not None
    if not ours and not not_loaded_instance:  # as wanted: only the shared reads
        assert all(asked is None for _, asked in fake.asked), fake.asked


def test_an_enabled_unit_that_is_not_loaded_is_read_as_enabled() -> None:
    """A unit wanted only by sleep.target (it runs on resume) is enabled but not loaded:
    ``systemctl show '*'`` leaves it out, the unit files list it."""
    with model(running=None, file_state="enabled") as fake:
        assert commands(services.service._inner(service=UNIT, running=None, enabled=True)) == []
    assert fake.asked == [("SystemdEnabled", None), ("SystemdEnabled", None), ("UnitFileStates", None)]
    with model(running=None, file_state="enabled") as fake:
        assert commands(services.service._inner(service=UNIT, running=None, enabled=False)) == [
            f"systemctl disable {UNIT}"]


def test_a_unit_as_wanted_reads_every_unit_once_per_fact_it_needs() -> None:
    with model(running=True, file_state="enabled") as fake:
        assert commands(services.service._inner(service="ollama", running=True, enabled=True)) == []
    assert fake.asked == [("SystemdStatus", None), ("SystemdEnabled", None)]
    with model(running=True, file_state="enabled") as fake:
        assert commands(services.service._inner(service="ollama", running=True)) == []
    assert fake.asked == [("SystemdStatus", None)]


def test_a_unit_not_as_wanted_runs_systemd_service_with_its_own_reads() -> None:
    with model(running=False, file_state="enabled") as fake:
        assert commands(services.service._inner(service="ollama", running=True, enabled=True)) == [
            "systemctl start ollama.service"]
    assert ("SystemdStatus", [UNIT]) in fake.asked and ("SystemdEnabled", [UNIT]) in fake.asked
