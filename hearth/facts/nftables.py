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


class OtherFirewalls(FactBase[list[str]]):
    """
    Firewall managers that would fight hearth's table: ``ufw`` when it is enabled
    (``ENABLED=yes`` in /etc/ufw/ufw.conf), ``firewalld`` when it is running.

    .. code:: python

        host.get_fact(OtherFirewalls)  # [] or ["ufw"] or ["firewalld"]
    """

    default = list

    def command(self) -> str:
        return (
            "if grep -qsE '^[[:space:]]*ENABLED[[:space:]]*=[[:space:]]*yes' /etc/ufw/ufw.conf; then echo ufw; fi; "
            "if systemctl is-active --quiet firewalld 2>/dev/null; then echo firewalld; fi; true"
        )

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class BootFileIsHearths(FactBase[bool]):
    """
    Whether ``path`` (Debian's /etc/nftables.conf) is a ruleset hearth wrote there
    before it had its own unit (its header says so).

    .. code:: python

        host.get_fact(BootFileIsHearths, path="/etc/nftables.conf")
    """

    def command(self, path: str) -> str:
        return f"grep -qs '^# hearth: firewall of ' {path} && echo yes || echo no"

    def process(self, output: list[str]) -> bool:
        return "\n".join(output).strip() == "yes"
