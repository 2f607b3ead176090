"""Facts about the files in a directory, read with one command.

pyinfra's ``files.put`` reads three facts for every file it manages (``File``, the parent's
``Directory``, ``Sha1File``): three commands even when the file is already right, 0.2-0.6 s
each on an emulated lab machine (docs/lab.md). ``FilesInDirectory`` reads what ``files.put``
compares (mode, owner, SHA-1) for every regular file of one directory at once.
"""

from __future__ import annotations

import re
import shlex
from typing import TypedDict

from pyinfra.api import FactBase

LARGEST = 1024 * 1024  # bytes: larger files are left out (their operation reads them itself)
_SHA1_LINE = re.compile(r"^([0-9a-f]{40})  (.+)$")


class FileState(TypedDict):
    """A regular file as ``files.put`` compares it: mode as ``stat %a`` gives it (644)."""

    mode: int
    user: str
    group: str
    sha1: str


class FilesInDirectory(FactBase[dict[str, FileState]]):
    """
    Every regular file directly in a directory (up to 1 MiB), by name: mode, owner, SHA-1.
    Links, subdirectories, larger files and names with a newline are left out; a missing
    directory gives ``{}``.

    .. code:: python

        host.get_fact(FilesInDirectory, path="/etc/systemd/system")
        # {"ollama.service": {"mode": 644, "user": "root", "group": "root", "sha1": "3f1c..."}}
    """

    @staticmethod
    def default() -> dict[str, FileState]:
        return {}

    def command(self, path: str) -> str:
        quoted = shlex.quote(path.rstrip("/") or "/")
        # GNU find: one line per file ("mode user group name", the name last), then sha1sum's
        # "digest  path" for the same files; a name sha1sum escapes (a backslash or newline in it)
        # matches no line below and is left out
        found = f"find {quoted} -mindepth 1 -maxdepth 1 -type f -size -{LARGEST + 1}c"
        return (f"[ -d {quoted} ] || exit 0; {found} -printf 'stat %m %u %g %f\\n'; "
                f"{found} -exec sha1sum -- {{}} +")

    def process(self, output: list[str]) -> dict[str, FileState]:
        stats: dict[str, tuple[int, str, str]] = {}
        digests: dict[str, str] = {}
        for line in output:
            if line.startswith("stat "):
                fields = line.split(" ", 4)
                if len(fields) == 5 and fields[1].isdigit():
                    stats[fields[4]] = (int(fields[1]), fields[2], fields[3])
            elif match := _SHA1_LINE.match(line):
                digests[match.group(2).rsplit("/", 1)[-1]] = match.group(1)
        return {name: FileState(mode=mode, user=user, group=group, sha1=digests[name])
                for name, (mode, user, group) in stats.items() if name in digests}
