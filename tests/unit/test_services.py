"""hearth.operations.services.service against pyinfra's systemd.service.

For any state of a unit (running or not, enabled or not, unknown to systemd) and any wish,
the operation must run exactly ``systemd.service``'s commands, and none when the unit is
already as wanted: both are planned against a model host (pyinfra's ``host`` replaced by a
stand-in answering facts). The one read of every unit here is a fresh one; how a read is
kept, and read again once something changed, runs for real in test_config_files.py (both
go through hearth.operations.reads.holds).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyinfra.api import StringCommand
from pyinfra.operations import systemd

from hearth.operations import services

UNIT = "ollama.service"


class ModelHost:
    """pyinfra's ``host``: one unit's state as systemd reports it, for one unit or for all."""

    def __init__(self, running: bool | None, enabled: bool | None) -> None:
        self.running, self.enabled = running, enabled
        self.asked: list[tuple[str, Any]] = []

    def get_fact(self, cls: Any, **kwargs: Any) -> dict[str, bool]:
        self.asked.append((cls.__name__, kwargs.get("services")))
        state = {"SystemdStatus": self.running, "SystemdEnabled": self.enabled}[cls.__name__]
        others = {"ssh.service": True, "cron.service": False}
        return {**others, **({UNIT: state} if state is not None else {})}

    def noop(self, message: str) -> None:
        pass


@contextmanager
def model(running: bool | None, enabled: bool | None) -> Iterator[ModelHost]:
    """Inside the block pyinfra's ``host`` is a :class:`ModelHost`, and a read through
    ``holds`` is a fresh read of every unit."""
    fake = ModelHost(running, enabled)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(systemd, "host", fake)
        patch.setattr(services, "holds", lambda fact, right, **arguments: right(fake.get_fact(fact, **arguments)))
        yield fake


def commands(generator: Any) -> list[str]:
    return [c.get_raw_value() if isinstance(c, StringCommand) else str(c) for c in generator]


STATES = st.none() | st.booleans()  # None: systemd does not list the unit


@given(running=STATES, enabled=STATES, want_running=STATES, want_enabled=STATES,
       name=st.sampled_from(["ollama", UNIT]))
def test_a_unit_changes_exactly_as_systemd_service_changes_it(running: bool | None, enabled: bool | None,
                                                              want_running: bool | None, want_enabled: bool | None,
                                                              name: str) -> None:
    with model(running, enabled):
        pyinfras = commands(systemd.service._inner(service=name, running=want_running, enabled=want_enabled))
    with model(running, enabled) as fake:
        ours = commands(services.service._inner(service=name, running=want_running, enabled=want_enabled))
    assert ours == pyinfras
    if not ours:  # already as wanted: only the reads of every unit, never one of its own
        assert all(asked is None for _, asked in fake.asked), fake.asked


def test_a_unit_as_wanted_reads_every_unit_once_per_fact_it_needs() -> None:
    with model(running=True, enabled=True) as fake:
        assert commands(services.service._inner(service="ollama", running=True, enabled=True)) == []
    assert fake.asked == [("SystemdStatus", None), ("SystemdEnabled", None)]
    with model(running=True, enabled=True) as fake:
        assert commands(services.service._inner(service="ollama", running=True)) == []
    assert fake.asked == [("SystemdStatus", None)]


def test_a_unit_not_as_wanted_runs_systemd_service_with_its_own_reads() -> None:
    with model(running=False, enabled=True) as fake:
        assert commands(services.service._inner(service="ollama", running=True, enabled=True)) == [
            "systemctl start ollama.service"]
    assert ("SystemdStatus", [UNIT]) in fake.asked and ("SystemdEnabled", [UNIT]) in fake.asked
