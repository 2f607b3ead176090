"""PowerShell text for Windows hosts reached over SSH: quoting, sending, reading.

pyinfra's SSH connector sends a command line to the host's sshd. Windows hosts
have ``_shell_executable: None`` in their host data (hearth.inventory.groups), so
pyinfra sends the line as is, without its usual ``sh -c '...'`` wrapper. hearth
sends every script as ``powershell.exe ... -EncodedCommand <base64 of UTF-16LE>``:
the same line works whether sshd's default shell is PowerShell or cmd.exe, and no
character of the script can be mangled by a second round of command-line quoting.

Scripts stop at the first error (``$ErrorActionPreference = 'Stop'``), and a
native program (powercfg, wg, sshd) that exits non-zero stops them too
(:func:`native`; its stderr alone does not).
"""

from __future__ import annotations

import base64
import re

POWERSHELL = "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand"
PREAMBLE = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n"
_COMMAND = re.compile(r"^powershell\.exe .* -EncodedCommand ([A-Za-z0-9+/=]+)$")


def quote(value: object) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded."""
    text = str(value)
    for quote_char in "\u2018\u2019\u201a\u201b":  # PowerShell treats these as quotes too
        text = text.replace(quote_char, quote_char * 2)
    return "'" + text.replace("'", "''") + "'"


def array(values: list[str] | tuple[str, ...]) -> str:
    """A PowerShell array of single-quoted strings: @('a', 'b')."""
    return "@(" + ", ".join(quote(v) for v in values) + ")"


def native(line: str) -> str:
    """Run a native program; a non-zero exit code stops the script with that code.

    Its stderr (progress, warnings) must not stop the script: Windows PowerShell 5.1
    turns a native program's stderr lines into errors when its own stderr is a pipe
    (as under sshd), which ``$ErrorActionPreference = 'Stop'`` would make fatal. The
    exit code decides instead.
    """
    return (f"$ErrorActionPreference = 'Continue'\n{line}\n$code = $LASTEXITCODE\n"
            "$ErrorActionPreference = 'Stop'\nif ($code -ne 0) { exit $code }")


def script(*lines: str) -> str:
    """The full script hearth sends: the preamble, then ``lines``."""
    return PREAMBLE + "\n".join(lines) + "\n"


def command(*lines: str) -> str:
    """The command line that runs ``script(*lines)`` on a Windows host."""
    body = script(*lines)
    return f"{POWERSHELL} {base64.b64encode(body.encode('utf-16-le')).decode()}"


def decode(line: str) -> str:
    """The script inside a command line made by :func:`command` (for tests and review)."""
    match = _COMMAND.match(str(line))
    if not match:
        raise ValueError(f"not a hearth PowerShell command: {str(line)[:80]}")
    return base64.b64decode(match.group(1)).decode("utf-16-le")


def list_records(lines: list[str]) -> list[dict[str, str]]:
    """Parse ``Format-List`` output: ``Name : Value`` lines, records split by blank lines.

    A value continued on the next line (indented, no ``:`` column) is joined to it.
    """
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip():
            if current:
                records.append(current)
                current, last = {}, ""
            continue
        key, sep, value = line.partition(" : ")
        if not sep and line.rstrip().endswith(" :"):
            key, sep, value = line.rstrip()[:-2], " : ", ""
        if sep and key.strip() and not key.startswith(" "):
            last = key.strip()
            current[last] = value.strip()
        elif last:
            current[last] = (current[last] + " " + line.strip()).strip()
    if current:
        records.append(current)
    return records
