"""Facts about local accounts, one account at a time.

pyinfra's ``Users`` fact (what ``server.user`` reads) runs ``lastlog``, ``grep`` and ``id``
for every account in /etc/passwd: about 200 processes on a stock Debian, 5-10 s on an
emulated lab machine (measured inside the kinds shape's TCG VM, docs/lab.md). ``Account``
reads the one account an operation is about, with what ``server.user`` compares.
"""

from __future__ import annotations

import shlex
from typing import TypedDict

from pyinfra.api import FactBase


class AccountEntry(TypedDict):
    """A local account as ``server.user`` compares it (``groups``: secondary groups only)."""

    uid: int
    gid: int
    home: str | None
    shell: str | None
    group: str
    groups: list[str]


class Account(FactBase[AccountEntry | None]):
    """
    One local account (its /etc/passwd line, primary and secondary groups), or ``None``.

    .. code:: python

        host.get_fact(Account, user="ollama")
        # {"uid": 998, "gid": 998, "home": "/var/lib/ollama", "shell": "/usr/sbin/nologin",
        #  "group": "ollama", "groups": ["render", "video"]}
    """

    def command(self, user: str) -> str:
        quoted = shlex.quote(user)
        # /etc/passwd, as pyinfra's Users fact reads it (an account only a directory service knows is
        # not local); the name compared as a string, never as a pattern
        return (f"entry=$(awk -F: -v user={quoted} '$1 == user' /etc/passwd); [ -n \"$entry\" ] || exit 0; "
                f'echo "$entry"; id -gn {quoted}; id -Gn {quoted}')

    def process(self, output: list[str]) -> AccountEntry | None:
        if len(output) < 3:
            return None
        fields = output[0].split(":")
        group = output[1].strip()
        return AccountEntry(uid=int(fields[2]), gid=int(fields[3]), home=fields[5] or None, shell=fields[6] or None,
                            group=group, groups=[g for g in output[2].split() if g != group])
