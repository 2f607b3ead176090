"""systemd unit files, read with one command.

pyinfra's ``SystemdEnabled`` read for every unit (``systemctl show --all '*'``) lists the
units systemd has loaded. A unit file that is enabled but not loaded (a unit wanted only
by ``sleep.target``, which runs on resume) is missing from it, though asked by name it
reports ``enabled``. ``UnitFileStates`` lists every installed unit file with its state,
as ``systemctl list-unit-files`` reads them from disk, loaded or not.
"""

from __future__ import annotations

from pyinfra.api import FactBase


class UnitFileStates(FactBase[dict[str, str]]):
    """
    Every installed unit file by name, with its state as systemd reports it (``enabled``,
    ``disabled``, ``static``, ``masked``, ``indirect``, ``alias``, ...). Templates are listed
    as templates (``getty@.service``); their instances, runtime units and units systemd
    generates may be missing.

    .. code:: python

        host.get_fact(UnitFileStates)
        # {"ssh.service": "enabled", "sshd.service": "alias", "hearth-heal.timer": "enabled",
        #  "getty@.service": "enabled", "apt-daily.service": "static"}
    """

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def requires_command(self) -> str:
        return "systemctl"

    def command(self) -> str:
        return "systemctl list-unit-files --no-legend --no-pager --full"

    def process(self, output: list[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        for line in output:
            fields = line.split()
            if len(fields) >= 2:  # "name state [vendor preset]"
                states[fields[0]] = fields[1]
        return states
