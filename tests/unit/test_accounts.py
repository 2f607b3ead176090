"""hearth.facts.accounts.Account and hearth.operations.accounts.user against pyinfra's own.

The fact's command runs for real on this machine and must read every local account as
pyinfra's ``Users`` fact reads it. The operation must change an account exactly when
``server.user`` would, and then run ``server.user``'s own commands: both are planned
against a model host (pyinfra's ``host`` replaced by a stand-in answering facts).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyinfra.api import StringCommand
from pyinfra.facts.server import Users
from pyinfra.operations import files, server

from hearth.facts.accounts import Account
from hearth.operations import accounts


def gather(fact: Any, **kwargs: Any) -> Any:
    """Run a fact's command here with sh, as pyinfra would on a host; its processed value."""
    out = subprocess.run(["sh", "-c", fact.command(**kwargs)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    return fact.process(lines) if lines else fact.default()


def test_every_local_account_reads_as_pyinfra_reads_it() -> None:
    users = gather(Users())
    assert "root" in users
    for name, entry in users.items():
        expected = {key: entry[key] for key in ("uid", "gid", "home", "shell", "group", "groups")}
        assert gather(Account(), user=name) == expected, name


def test_a_missing_account_is_none_and_a_name_is_never_a_pattern() -> None:
    assert gather(Account(), user="hearth-no-such-account") is None
    assert gather(Account(), user="r..t") is None  # compared as a string: not "root"
    assert gather(Account(), user="root; echo x") is None


class ModelHost:
    """pyinfra's ``host`` for planning: facts from one account's record, commands collected."""

    def __init__(self, account: dict[str, Any] | None, home_owner: tuple[str, str] | None) -> None:
        self.account, self.home_owner = account, home_owner
        self.noops: list[str] = []

    def get_fact(self, cls: Any, **kwargs: Any) -> Any:
        name = cls.__name__
        if name == "Users":
            return {"app": {**self.account, "comment": None, "lastlog": None, "password": "!"}} if self.account else {}
        if name == "Account":
            return self.account
        if name == "Groups":
            return ["app", "render", "video", "other"]
        if name == "Os":
            return "Linux"
        if name == "Which":
            return f"/usr/sbin/{kwargs['command']}"
        if name == "Directory":
            return {"user": self.home_owner[0], "group": self.home_owner[1], "mode": 755} if self.home_owner else None
        raise AssertionError(f"unexpected fact {name} {kwargs}")

    def noop(self, message: str) -> None:
        self.noops.append(message)


def commands(generator: Any) -> list[str]:
    return [c.get_raw_value() if isinstance(c, StringCommand) else str(c) for c in generator]


@contextmanager
def model(account: dict[str, Any] | None, home_owner: tuple[str, str] | None = ("app", "app")) -> Iterator[ModelHost]:
    """pyinfra's ``host`` is a :class:`ModelHost` of ``account`` inside the block."""
    fake = ModelHost(account, home_owner)
    with pytest.MonkeyPatch.context() as patch:
        for module in (accounts, server, files):
            patch.setattr(module, "host", fake)
        yield fake


HOMES = st.sampled_from(["/var/lib/app", "/home/app"])
SHELLS = st.sampled_from(["/usr/sbin/nologin", "/bin/bash"])
GROUPS = st.lists(st.sampled_from(["render", "video", "other"]), unique=True, max_size=3)
ACCOUNTS = st.none() | st.fixed_dictionaries({
    "uid": st.just(998), "gid": st.just(998), "home": HOMES, "shell": SHELLS,
    "group": st.sampled_from(["app", "other"]), "groups": GROUPS})


@given(account=ACCOUNTS, home=HOMES, shell=SHELLS, group=st.none() | st.sampled_from(["app", "other"]),
       groups=st.none() | GROUPS)
def test_an_account_changes_exactly_when_server_user_would_change_it(
        account: dict[str, Any] | None, home: str, shell: str, group: str | None, groups: list[str] | None) -> None:
    wanted = {"user": "app", "home": home, "shell": shell, "group": group, "groups": groups or [], "system": True}
    with model(account):
        pyinfras = commands(server.user._inner(**wanted))
        ours = commands(accounts.user._inner(**{**wanted, "groups": groups}))
    changes = [c for c in pyinfras if c.startswith(("useradd", "usermod"))]
    assert ours == pyinfras, "the same commands as server.user, whatever the account"
    assert bool(changes) == (not accounts.matches(account, home, shell, group, groups or []))


def test_a_right_account_is_read_alone_and_its_home_still_checked() -> None:
    account = {"uid": 998, "gid": 998, "home": "/var/lib/app", "shell": "/usr/sbin/nologin", "group": "app",
               "groups": ["video", "render"]}
    wanted = {"user": "app", "home": "/var/lib/app", "shell": "/usr/sbin/nologin", "group": "app",
              "groups": ["render", "video"], "system": True}
    with model(account, home_owner=("root", "root")) as fake:
        asked: list[str] = []
        get_fact = fake.get_fact
        fake.get_fact = lambda cls, **kw: (asked.append(cls.__name__), get_fact(cls, **kw))[1]  # type: ignore[method-assign]
        assert commands(accounts.user._inner(**wanted)) == ["chown app:app /var/lib/app"]
    assert "Users" not in asked and asked[0] == "Account"


class GroupsHost:
    """pyinfra's ``host`` for planning a group: the host's groups, the facts asked for."""

    def __init__(self, groups: list[str]) -> None:
        self.groups, self.asked = groups, []

    def get_fact(self, cls: Any, **kwargs: Any) -> Any:
        self.asked.append(cls.__name__)
        return {"Groups": self.groups, "Os": "Linux"}[cls.__name__]

    def noop(self, message: str) -> None:
        pass


@given(present=st.booleans(), system=st.booleans())
def test_a_group_changes_exactly_as_server_group_changes_it(present: bool, system: bool) -> None:
    groups = ["root", "video"] + (["ollama"] if present else [])
    fake = GroupsHost(groups)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "host", fake)
        patch.setattr(accounts, "holds", lambda fact, right, **arguments: right(fake.get_fact(fact, **arguments)))
        pyinfras = commands(server.group._inner(group="ollama", system=system))
        fake.asked.clear()
        ours = commands(accounts.group._inner(group="ollama", system=system))
    assert ours == pyinfras and bool(ours) == (not present)
    if present:  # one read of the host's groups (shared through holds), nothing of its own
        assert fake.asked == ["Groups"]
