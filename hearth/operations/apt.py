"""apt packages without a needless `apt-get update` on every run."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from pyinfra import host
from pyinfra.api import State, operation
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_state
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

from hearth.operations.reads import holds, remember

# Hosts whose lists this deploy already refreshes, per deploy (pyinfra's State).
_REFRESHED: WeakKeyDictionary[State, set[str]] = WeakKeyDictionary()
# What each host had installed when the deploy started, per deploy.
_AT_START: WeakKeyDictionary[State, dict[str, dict[str, list[str]]]] = WeakKeyDictionary()


def installed_at_start() -> dict[str, list[str]]:
    """
    The Debian packages this host had when the deploy started (``DebPackages``: name ->
    versions), read once per host and deploy. While the roles' code runs (pyinfra's
    prepare stage) no operation has run yet, so the answer cannot change; each role's
    ``dpkg -l`` would cost one command per call (0.2-0.6 s on an emulated machine).
    Outside the prepare stage the fact is read afresh.

    **Example:**

    .. code:: python

        if "nvidia-driver" not in installed_at_start(): ...
    """
    state = ctx_state.get()
    if state.current_stage != StateStage.Prepare:
        return host.get_fact(DebPackages) or {}
    hosts = _AT_START.setdefault(state, {})
    if host.name not in hosts:
        packages = host.get_fact(DebPackages)
        remember(DebPackages, packages)  # the install steps' first look, when they run
        hosts[host.name] = packages or {}
    return hosts[host.name]


def packages_installed(name: str, packages: list[str], no_recommends: bool = False) -> None:
    """
    Install Debian packages; refresh the apt lists first only when one is missing,
    so a converged host reports no change (an unconditional update always would), and
    at most once per host and deploy: a fresh host that needs packages from several
    roles gets one ``apt-get update``, before the first of them. (A role that adds an
    apt source refreshes for it itself: roles/nvidia.)

    **Example:**

    .. code:: python

        packages_installed("Python virtualenv support", ["python3-venv"])
        packages_installed("Node exporter", ["prometheus-node-exporter"], no_recommends=True)
    """
    at_start = installed_at_start()
    missing = [package for package in packages if package not in at_start]
    refreshed = _REFRESHED.setdefault(ctx_state.get(), set())
    if missing and host.name not in refreshed:
        apt.update(name=f"Refresh apt lists ({', '.join(missing)} missing)")
        refreshed.add(host.name)
    installed(name=name, packages=packages, no_recommends=no_recommends)


def plain(packages: list[str]) -> bool:
    """Whether every package is named alone (a version, a path or an architecture is
    left to ``apt.packages``, which reads it its own way)."""
    return all(not any(mark in package for mark in "=/:") for package in packages)


@operation()
def installed(packages: list[str], no_recommends: bool = False):
    """
    Install Debian packages: pyinfra's ``apt.packages``, but packages that are all installed
    cost one read of what the host has installed per deploy (while nothing on the host
    changes: :func:`hearth.operations.reads.holds`), not one ``dpkg -l`` per step.

    + packages: the packages (a name with a version, ``pkg=1.2``, always runs ``apt.packages``)
    + no_recommends: install without recommended packages

    **Example:**

    .. code:: python

        installed(name="Node exporter", packages=["prometheus-node-exporter"], no_recommends=True)
    """
    if plain(packages) and holds(DebPackages, lambda found: all(package in (found or {}) for package in packages)):
        return
    yield from apt.packages._inner(packages=packages, no_recommends=no_recommends)
