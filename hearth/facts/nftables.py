"""nftables facts: what the kernel has loaded right now."""

from __future__ import annotations

import re

from pyinfra.api import FactBase

COMMENT = re.compile(r'comment "([^"]*)"')


class NftTableComment(FactBase[str | None]):
    """
    The comment of a loaded nftables table, or ``None`` when the table is not loaded.

    hearth stamps its table with the hash of the ruleset it rendered, so this tells
    whether the live ruleset is the one on disk.

    .. code:: python

        host.get_fact(NftTableComment, family="inet", table="hearth", _sudo=True)
    """

    requires_command = "nft"

    def command(self, family: str, table: str) -> str:
        return f"nft list table {family} {table} 2>/dev/null | head -n 3 || true"

    def process(self, output: list[str]) -> str | None:
        for line in output:
            match = COMMENT.search(line)
            if match:
                return match.group(1)
        return None
