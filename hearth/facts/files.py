"""Facts about what is in a directory, read with one command.

pyinfra's file operations read facts for each path they manage: ``files.put`` three (the
file, its directory, its SHA-1), ``files.directory`` and ``files.file`` one each, so a host
where everything is already right still runs several commands per path, 0.2-0.6 s each
on an emulated lab machine (docs/lab.md). ``DirectoryListing`` reads what those operations
compare (kind, mode, owner, and a regular file's SHA-1) for every entry of one directory
at once.
"""

from __future__ import annotations

import re
import shlex
from typing import TypedDict

from pyinfra.api import FactBase

LARGEST = 1024 * 1024  # bytes: a larger file is listed without its SHA-1
KINDS = {"f": "file", "d": "directory", "l": "link"}  # find's %y; anything else is "other"
_SHA1_LINE = re.compile(r"^([0-9a-f]{40})  (.+)$")


class Entry(TypedDict):
    """One entry as pyinfra's file operations compare it: mode as ``stat %a`` gives it (644),
    ``sha1`` for a regular file up to 1 MiB (else ``None``)."""

    kind: str
    mode: int
    user: str
    group: str
    sha1: str | None


class DirectoryListing(FactBase[dict[str, Entry]]):
    """
    Every entry directly in a directory, by name: its kind (``file``, ``directory``,
    ``link``, ``other``), mode and owner, and a regular file's SHA-1 (up to 1 MiB). Names
    with a newline are left out; a missing directory gives ``{}``.

    .. code:: python

        host.get_fact(DirectoryListing, path="/etc/systemd/system")
        # {"ollama.service": {"kind": "file", "mode": 644, "user": "root", "group": "root",
        #                     "sha1": "3f1c..."}, "multi-user.target.wants": {"kind": "directory", ...}}
    """

    @staticmethod
    def default() -> dict[str, Entry]:
        return {}

    def command(self, path: str) -> str:
        quoted = shlex.quote(path.rstrip("/") or "/")
        # GNU find: one line per entry ("kind mode user group name", the name last; names with
        # a newline left out), then sha1sum's "digest  path" of the regular files; a name sha1sum
        # escapes (a backslash in it) matches no line below and is listed without its SHA-1
        entries = f"find {quoted} -mindepth 1 -maxdepth 1 ! -name \"$newline\""
        return (f"[ -d {quoted} ] || exit 0; newline=$(printf '*\\n*'); "
                f"{entries} -printf 'entry %y %m %u %g %f\\n'; "
                f"{entries} -type f -size -{LARGEST + 1}c -exec sha1sum -- {{}} +")

    def process(self, output: list[str]) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        digests: dict[str, str] = {}
        for line in output:
            if line.startswith("entry "):
                fields = line.split(" ", 5)
                if len(fields) == 6 and fields[2].isdigit():
                    entries[fields[5]] = Entry(kind=KINDS.get(fields[1], "other"), mode=int(fields[2]),
                                               user=fields[3], group=fields[4], sha1=None)
            elif match := _SHA1_LINE.match(line):
                digests[match.group(2).rsplit("/", 1)[-1]] = match.group(1)
        for name, digest in digests.items():
            if name in entries and entries[name]["kind"] == "file":
                entries[name]["sha1"] = digest
        return entries
