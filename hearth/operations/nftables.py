"""Load an nftables ruleset atomically, after the kernel has checked it."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation

from hearth.facts.nftables import NftTableComment
from hearth.operations.files import validated_put


@operation()
def ruleset(content: str, dest: str, family: str, table: str, stamp: str):
    """
    Install an nftables ruleset file and load it, in one ``nft -f`` transaction.

    The candidate is checked by the kernel (``nft -c -f``) before it replaces
    ``dest``; a rejected ruleset changes nothing (the live rules and the file stay
    as they were). The file must stamp ``table`` with ``comment "<stamp>"``: the
    ruleset is (re)loaded when the live table's stamp differs -- also after
    someone flushed the rules by hand -- and not otherwise.

    + content: the ruleset text (replaces ``family table`` as a whole)
    + dest: where it lives on the host (e.g. /etc/nftables.conf, loaded at boot)
    + family, table: the table the file defines
    + stamp: the comment the file gives the table

    **Example:**

    .. code:: python

        nftables.ruleset(
            name="Firewall",
            content=cf.render(),
            dest="/etc/nftables.conf",
            family="inet",
            table="hearth",
            stamp="hearth 0123abcd",
        )
    """
    if f'comment "{stamp}"' not in content:
        raise ValueError(f"the ruleset does not stamp table {family} {table} with {stamp!r}")
    yield from validated_put._inner(
        content=content, dest=dest, validate="nft -c -f {path}", mode="0600",
    )
    if host.get_fact(NftTableComment, family=family, table=table) != stamp:
        yield StringCommand("nft", "-f", shlex.quote(dest))
    else:
        host.noop(f"nftables table {family} {table} is loaded ({stamp})")
