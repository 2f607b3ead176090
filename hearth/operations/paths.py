"""Directories and files by path: pyinfra's ``files.directory`` and ``files.file``, reading
a path that is already right cheaply.

Each of those reads a fact of its own per path (one command). Here a path that is already
as wanted is looked up in one read of its parent directory
(:class:`hearth.facts.files.DirectoryListing`), shared by every path there and kept while
nothing on the host changes (:func:`hearth.operations.reads.holds`); any other case runs
pyinfra's own operation, which reads afresh.
"""

from __future__ import annotations

import posixpath

from pyinfra.api import operation
from pyinfra.operations import files

from hearth.facts.files import DirectoryListing, Entry
from hearth.operations.config_files import owned_as_wanted
from hearth.operations.reads import holds


def as_wanted(path: str, kind: str, present: bool, mode: str | None, user: str | None, group: str | None) -> bool:
    """Whether pyinfra's operation for ``kind`` would leave ``path`` as it is: absent when not
    ``present``; else of that kind with this mode and owner (found in its parent's listing)."""
    parent, name = posixpath.split(path.rstrip("/"))

    def right(found: dict[str, Entry]) -> bool:
        entry = found.get(name)
        if not present:
            return entry is None
        return entry is not None and entry["kind"] == kind and owned_as_wanted(entry, mode, user, group)

    return bool(parent and name) and holds(DirectoryListing, right, path=parent)


@operation()
def directory(path: str, present: bool = True, mode: str | None = None, user: str | None = None,
              group: str | None = None):
    """
    Make sure a directory exists with this mode and owner, or is gone: pyinfra's
    ``files.directory``, but one that is already as wanted costs one read of its parent.

    + path: the directory
    + present: whether it should exist (``False``: removed with what it holds)
    + mode, user, group: its mode and owner (``None``: left as they are)

    **Example:**

    .. code:: python

        paths.directory(name="Model store", path="/var/lib/ollama/models", user="ollama", group="ollama",
                        mode="0750")
    """
    if as_wanted(path, "directory", present, mode, user, group):
        return
    yield from files.directory._inner(path=path, present=present, mode=mode, user=user, group=group)


@operation()
def file(path: str, present: bool = True, mode: str | None = None, user: str | None = None,
         group: str | None = None):
    """
    Make sure a regular file exists (empty if it is made) with this mode and owner, or is
    gone: pyinfra's ``files.file``, but one that is already as wanted costs one read of its
    parent.

    + path: the file
    + present: whether it should exist
    + mode, user, group: its mode and owner (``None``: left as they are)

    **Example:**

    .. code:: python

        paths.file(name="No old unit", path="/etc/systemd/system/old.service", present=False)
    """
    if as_wanted(path, "file", present, mode, user, group):
        return
    yield from files.file._inner(path=path, present=present, mode=mode, user=user, group=group)
