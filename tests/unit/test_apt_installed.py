"""hearth.operations.apt.installed against pyinfra's apt.packages.

Installed packages cost one shared read of what the host has (through
hearth.operations.reads.holds, a fresh read here); anything else runs ``apt.packages``
itself: the same commands, planned against a model host.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyinfra.api import StringCommand
from pyinfra.operations import apt

from hearth.operations import apt as apt_ops


class ModelHost:
    """pyinfra's ``host``: the packages a host has (``DebPackages``), the facts asked for."""

    def __init__(self, packages: dict[str, set[str]]) -> None:
        self.packages, self.asked = packages, []

    def get_fact(self, cls: Any, **kwargs: Any) -> Any:
        self.asked.append(cls.__name__)
        if cls.__name__ == "DebPackages":
            return self.packages
        if cls.__name__ == "DebPackageProvides":
            return []
        raise AssertionError(f"unexpected fact {cls.__name__}")

    def noop(self, message: str) -> None:
        pass


def plan(packages: dict[str, set[str]], wanted: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(apt.packages' commands, installed's commands, the facts installed asked for)."""
    fake = ModelHost(packages)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(apt, "host", fake)
        patch.setattr(apt_ops, "holds", lambda fact, right, **arguments: right(fake.get_fact(fact, **arguments)))
        theirs = [c.get_raw_value() if isinstance(c, StringCommand) else str(c)
                  for c in apt.packages._inner(packages=wanted, no_recommends=True)]
        fake.asked.clear()
        ours = [c.get_raw_value() if isinstance(c, StringCommand) else str(c)
                for c in apt_ops.installed._inner(packages=wanted, no_recommends=True)]
    return theirs, ours, fake.asked


NAMES = ["nftables", "chrony", "zstd"]


@given(have=st.sets(st.sampled_from(NAMES)), wanted=st.lists(st.sampled_from(NAMES), min_size=1, unique=True))
def test_packages_are_installed_exactly_as_apt_packages_installs_them(have: set[str], wanted: list[str]) -> None:
    theirs, ours, asked = plan({name: {"1.0"} for name in have}, wanted)
    assert ours == theirs
    assert bool(ours) == (not set(wanted) <= have)
    if not ours:  # all there: the one shared read of what is installed, nothing of its own
        assert asked == ["DebPackages"]


def test_a_package_with_a_version_is_always_left_to_apt_packages() -> None:
    theirs, ours, asked = plan({"nvidia-container-toolkit": {"1.17.8-1"}}, ["nvidia-container-toolkit=1.17.8-1"])
    assert ours == theirs
    assert asked.count("DebPackages") == 1  # apt.packages' own read: the shared one was not trusted for it
