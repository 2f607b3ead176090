"""hearth's PowerShell operations for Windows hosts, sent over pyinfra's SSH connector.

Each operation reads the host's state through a fact first (hearth.facts.windows)
and yields a command only for what differs, so a converged host reports no change.
Every command is a PowerShell script sent as ``powershell.exe -EncodedCommand``
(:mod:`hearth.powershell`); the host's data must set ``_shell_executable: None``
(hearth.inventory.groups does for ``os: windows``) and no ``_sudo`` (the SSH user
is an administrator).

    from hearth.operations.windows import power, wol
    wol.nic_wakes(name="Wake-on-LAN on the wired NIC", mac="d8:bb:c1:30:60:12")
"""

from __future__ import annotations

from pyinfra.api import StringCommand

from hearth import powershell as ps


def run(*lines: str) -> StringCommand:
    """One PowerShell script as the command pyinfra sends."""
    return StringCommand(ps.command(*lines))
