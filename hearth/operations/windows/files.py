"""Files on a Windows host: exact content, checked by a validator before it replaces the old one."""

from __future__ import annotations

import base64
import hashlib

from pyinfra import host
from pyinfra.api import operation

from hearth import powershell as ps
from hearth.facts.windows import FileHash
from hearth.operations.windows import run

# SYSTEM and Administrators only, nothing inherited: for secrets and sshd's own files.
ADMIN_ONLY_ACL = ('icacls.exe {path} /inheritance:r /grant:r "*S-1-5-18:F" "*S-1-5-32-544:F"')


def write_lines(path: str, content: str) -> list[str]:
    """PowerShell lines that write ``content`` (UTF-8, no BOM, as given) to ``path``."""
    data = base64.b64encode(content.encode()).decode()
    return [
        f"New-Item -ItemType Directory -Force -Path (Split-Path -Parent {ps.quote(path)}) | Out-Null",
        f"[IO.File]::WriteAllBytes({ps.quote(path)}, [Convert]::FromBase64String({ps.quote(data)}))",
    ]


@operation()
def file_content(path: str, content: str, validate: str | None = None, admin_only: bool = False):
    """
    Write ``content`` to ``path`` when the file's SHA256 differs. With ``validate``
    (a PowerShell line; ``{path}`` is the quoted candidate) the candidate is written
    beside it first and moved into place only if the validator exits 0; otherwise
    the old file stays and the operation fails.

    + admin_only: only SYSTEM and Administrators may read the file (sshd requires
      this of ``administrators_authorized_keys``)

    **Example:**

    .. code:: python

        files.file_content(name="sshd_config", path=r"C:\\ProgramData\\ssh\\sshd_config",
                           content=text, validate="& sshd.exe -t -f {path}")
    """
    wanted = hashlib.sha256(content.encode()).hexdigest().upper()
    if host.get_fact(FileHash, path=path) == wanted:
        host.noop(f"{path} is up to date")
        return
    target = f"{path}.hearth-new" if validate else path
    lines = write_lines(target, content)
    if admin_only:
        lines.append(ps.native(ADMIN_ONLY_ACL.format(path=ps.quote(target)) + " | Out-Null"))
    if validate:
        lines += [
            "$ErrorActionPreference = 'Continue'  # the validator's complaints go to stderr; its exit code decides",
            validate.format(path=ps.quote(target)),
            "$code = $LASTEXITCODE",
            "$ErrorActionPreference = 'Stop'",
            "if ($code -ne 0) {",
            f"  Remove-Item -LiteralPath {ps.quote(target)} -Force",
            f"  throw {ps.quote(f'hearth: {path} rejected by: {validate}')}",
            "}",
            f"Move-Item -LiteralPath {ps.quote(target)} -Destination {ps.quote(path)} -Force",
        ]
    yield run(*lines)
