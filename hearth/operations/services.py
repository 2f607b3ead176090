"""systemd units: pyinfra's ``systemd.service``, reading a unit that is already right cheaply.

``systemd.service`` reads two facts for its unit (``SystemdStatus``, ``SystemdEnabled``):
two commands per unit even when it already runs and is enabled as wanted, 0.2-0.6 s each
on an emulated lab machine (docs/lab.md). :func:`service` answers from reads shared by the
units a deploy asks about (:func:`hearth.operations.reads.holds`: kept while nothing on the
host changes): every loaded unit's state and unit file state (``SystemdStatus`` and
``SystemdEnabled`` of ``'*'``; a unit not loaded is not running), and for a unit that is
not loaded, every unit file's state (``UnitFileStates``: ``systemctl show '*'`` lists
loaded units only, and a unit enabled but not loaded, such as one wanted by
``sleep.target``, is still enabled). A unit that is not as wanted, or an instance of a
template that is not loaded (unit files are listed as templates), runs
``systemd.service`` itself.
"""

from __future__ import annotations

from pyinfra.api import operation
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations import systemd

from hearth.facts.systemd import UnitFileStates
from hearth.operations.reads import holds

# Unit types systemd.service takes as they are; any other name gets ".service" (as it does)
UNIT_TYPES = (".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target", ".path", ".timer",
              ".slice", ".scope")


def unit_name(service: str) -> str:
    """The unit ``systemd.service`` means by ``service``: ``ollama`` is ``ollama.service``."""
    return service if service.endswith(UNIT_TYPES) else f"{service}.service"


def running_as_wanted(statuses: dict[str, bool], unit: str, running: bool | None) -> bool:
    """Whether ``systemd.service`` would neither start nor stop ``unit`` (``running=None``: not asked)."""
    return running is None or bool(statuses.get(unit)) == running


def enabled_as_wanted(unit_files: dict[str, str], unit: str, enabled: bool | None) -> bool:
    """Whether ``systemd.service`` would neither enable nor disable ``unit`` (``enabled=None``: not asked),
    from :class:`UnitFileStates`: a unit it does not list has no unit file (not enabled), unless
    it is an instance of a template, which it never lists (not known to be as wanted)."""
    if enabled is None:
        return True
    if unit not in unit_files:
        return "@" not in unit and not enabled
    return (unit_files[unit] in SystemdEnabled.state_values) == enabled


def _enabled_holds(unit: str, enabled: bool) -> bool:
    """Whether ``unit`` is enabled as wanted: from the loaded units' read, or for a unit that is
    not loaded, from the unit files' read."""
    if holds(SystemdEnabled, lambda units: unit in units and units[unit] == enabled):
        return True
    return (holds(SystemdEnabled, lambda units: unit not in units)
            and holds(UnitFileStates, lambda files: enabled_as_wanted(files, unit, enabled)))  # fmt: skip


@operation()
def service(service: str, running: bool | None = True, enabled: bool | None = None):
    """
    Start or stop a systemd unit and enable or disable it: pyinfra's ``systemd.service``,
    but a unit already as wanted costs reads of every unit's state shared by the deploy's
    units (while nothing on the host changes), not two commands of its own. Restarts and reloads stay
    with ``systemd.service`` (they run only when asked).

    + service: the unit (``ollama`` means ``ollama.service``)
    + running: whether it should run (``None``: left as it is)
    + enabled: whether it should start at boot (``None``: left as it is)

    **Example:**

    .. code:: python

        services.service(name="Ollama enabled and running", service="ollama", running=True, enabled=True)
    """
    unit = unit_name(service)
    if (running is None or holds(SystemdStatus, lambda statuses: running_as_wanted(statuses, unit, running))) and (
            enabled is None or _enabled_holds(unit, enabled)):
        return
    yield from systemd.service._inner(service=service, running=running, enabled=enabled)
