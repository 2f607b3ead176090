"""apt packages without a needless `apt-get update` on every run."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from pyinfra import host
from pyinfra.api import State
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_state
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

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
        hosts[host.name] = host.get_fact(DebPackages) or {}
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
    installed = installed_at_start()
    missing = [package for package in packages if package not in installed]
    refreshed = _REFRESHED.setdefault(ctx_state.get(), set())
    if missing and host.name not in refreshed:
        apt.update(name=f"Refresh apt lists ({', '.join(missing)} missing)")
        refreshed.add(host.name)
    apt.packages(name=name, packages=packages, no_recommends=no_recommends)
