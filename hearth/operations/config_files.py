"""Configuration files: pyinfra's ``files.put``, reading a file that is already right cheaply.

``files.put`` reads three facts per file (the file, its directory, its SHA-1): three
commands for a file that is already right, which on an emulated lab machine are 0.2-0.6 s
each (docs/lab.md). :func:`put` first looks the file up in one read of its whole directory
(:class:`hearth.facts.files.DirectoryListing`); a file that is right there is left alone,
any other case runs ``files.put`` itself, so nothing of it is re-implemented.

A directory read stays good only while nothing on the host changes: once any operation
has run a command on the host since the read, a file it lists as right is read again
before it is trusted (one command for the whole directory), and a file it lists as
different or missing goes straight to ``files.put``, which reads it afresh
(:func:`hearth.operations.reads.holds`).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import IO

from pyinfra.api import operation
from pyinfra.api.util import get_file_sha1
from pyinfra.operations import files
from pyinfra.operations.util.files import ensure_mode_int

from hearth.facts.files import DirectoryListing, Entry
from hearth.operations.reads import holds


def owned_as_wanted(found: Entry, mode: str | int | None, user: str | None, group: str | None) -> bool:
    """Whether ``found`` has this mode and owner (``None``: not compared), as pyinfra's file
    operations compare them."""
    wanted_mode = ensure_mode_int(mode)
    return ((wanted_mode is None or found["mode"] == wanted_mode)
            and (user is None or found["user"] == user) and (group is None or found["group"] == group))  # fmt: skip


def matches(found: Entry | None, sha1: str, mode: str | int | None, user: str | None, group: str | None) -> bool:
    """Whether ``files.put`` would leave ``found`` as it is (it compares exactly these)."""
    return (found is not None and found["kind"] == "file" and found["sha1"] == sha1
            and owned_as_wanted(found, mode, user, group))


def already_in_place(dest: str, sha1: str, mode: str | int | None = None, user: str | None = None,
                     group: str | None = None) -> bool:
    """
    Whether ``dest`` on the current host holds exactly this content (by SHA-1), mode and
    owner (``None``: not compared), from one read of its directory per deploy while
    nothing on the host changes (see the module's docstring).

    **Example:**

    .. code:: python

        if not already_in_place("/etc/hearth/idle.json", sha1, mode="0644"): ...
    """
    directory, name = posixpath.split(dest)
    return holds(DirectoryListing, lambda found: matches(found.get(name), sha1, mode, user, group), path=directory)


@operation()
def put(src: str | IO, dest: str, mode: str | None = None, user: str | None = None, group: str | None = None):
    """
    Upload a file (a local path or a file-like object): pyinfra's ``files.put``, but a file
    that is already right costs one read of its directory, shared by every file there.

    + src: local file path, or a file-like object (``StringIO`` of a rendered template)
    + dest: the full path on the host (never a directory)
    + mode, user, group: the file's mode and owner (``None``: left as they are)

    **Example:**

    .. code:: python

        config_files.put(name="Ollama unit", src=StringIO(unit.render()),
                         dest="/etc/systemd/system/ollama.service", mode="0644")
    """
    if isinstance(src, (str, Path)) and not Path(src).is_file():
        raise OSError(f"No such file: {src}")
    if already_in_place(dest, get_file_sha1(src), mode, user, group):
        return
    yield from files.put._inner(src=src, dest=dest, mode=mode, user=user, group=group)
