"""Local accounts: pyinfra's ``server.user`` and ``server.group``, reading cheaply what is already right."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.server import Groups
from pyinfra.operations import files, server

from hearth.facts.accounts import Account, AccountEntry
from hearth.operations.reads import holds


def matches(account: AccountEntry | None, home: str, shell: str, group: str | None, groups: list[str]) -> bool:
    """Whether ``server.user`` would leave ``account`` as it is (it compares exactly these)."""
    return (account is not None and account["home"] == home and account["shell"] == shell
            and (group is None or account["group"] == group)
            and (not groups or set(account["groups"]) == set(groups)))  # fmt: skip


@operation()
def user(user: str, home: str, shell: str, group: str | None = None, groups: list[str] | None = None,
         system: bool = False):
    """
    Make sure a local account exists with this home, shell and groups, and owns its home.

    The same commands as pyinfra's ``server.user`` (it runs them whenever the account is
    missing or differs), but an account that is already right is read with one ``awk``
    and two ``id`` (:class:`hearth.facts.accounts.Account`), not with pyinfra's ``Users``
    fact, which runs ``lastlog`` and ``id`` for every account on the host.

    + user: the account's name
    + home, shell: its home directory (made and owned by the account) and login shell
    + group: its primary group (``None``: what ``useradd`` gives, an existing group of its name)
    + groups: its exact secondary groups (``None``: left as they are)
    + system: a system account (``useradd -r``) when it is created

    **Example:**

    .. code:: python

        accounts.user(name="User ollama", user="ollama", group="ollama", groups=["render", "video"],
                      system=True, home="/var/lib/ollama", shell="/usr/sbin/nologin")
    """
    wanted = groups or []
    if not matches(host.get_fact(Account, user=user), home, shell, group, wanted):
        yield from server.user._inner(user=user, home=home, shell=shell, group=group, groups=wanted,
                                      system=system)
        return
    # what server.user does last for an existing account (ensure_home)
    yield from files.directory._inner(path=home, user=user, group=group or user, _no_fail_on_link=True)


@operation()
def group(group: str, system: bool = False):
    """
    Make sure a local group exists: pyinfra's ``server.group``, but a group that exists
    costs one read of the host's groups per deploy (while nothing on the host changes:
    :func:`hearth.operations.reads.holds`), not two facts per group.

    + group: the group's name
    + system: a system group (``groupadd -r``) when it is created

    **Example:**

    .. code:: python

        accounts.group(name="Group ollama", group="ollama", system=True)
    """
    if holds(Groups, lambda groups: group in (groups or [])):
        return
    yield from server.group._inner(group=group, system=system)
