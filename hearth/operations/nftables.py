"""Load an nftables ruleset atomically, after the kernel has checked it."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation

from hearth.facts.nftables import NftTableComment, OtherFirewalls
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


def _refuse(message: str) -> StringCommand:
    """A command that fails the host with ``message`` (nothing else runs there)."""
    return StringCommand(f"echo {shlex.quote('hearth: ' + message)} >&2; exit 1")


@operation()
def no_other_firewall():
    """
    Fail the host, before any firewall change, when ufw is enabled or firewalld
    runs: two managers of one packet filter undo each other's rules. The fix is
    the operator's (disable the other one, or leave the host out of hearth's
    firewall); hearth does not fight it.

    **Example:**

    .. code:: python

        nftables.no_other_firewall(name="No ufw or firewalld")
    """
    others = host.get_fact(OtherFirewalls)
    if not others:
        host.noop("no ufw or firewalld active")
        return
    fixes = {"ufw": "`ufw disable`", "firewalld": "`systemctl disable --now firewalld`"}
    yield _refuse(f"{' and '.join(others)} manage this host's firewall; hearth's nftables table would fight "
                  f"{'them' if len(others) > 1 else 'it'}: {', '.join(fixes[o] for o in others)} "
                  f"(or remove {' and '.join(others)}) and re-run")


@operation()
def keeps_session(problem: str | None):
    """
    Fail the host before a ruleset loads that would drop this deploy's own SSH
    connection (``problem``, e.g. from ``hearth.configs.firewall.unprotected_source``
    fed with :class:`~hearth.facts.system.SshClientAddress`). The running session
    would survive through ``ct state established`` and the NEXT run would hang,
    so the refusal comes now, naming the address and the setting to change.

    **Example:**

    .. code:: python

        nftables.keeps_session(name="Deploy session stays allowed", problem=None)
    """
    if problem is None:
        host.noop("the deploying address stays allowed on SSH")
        return
    yield _refuse(problem)
