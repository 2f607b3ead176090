"""apt packages without a needless `apt-get update` on every run."""

from __future__ import annotations

from pyinfra import host
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt


def packages_installed(name: str, packages: list[str], no_recommends: bool = False) -> None:
    """
    Install Debian packages; refresh the apt lists first only when one is missing,
    so a converged host reports no change (an unconditional update always would).

    **Example:**

    .. code:: python

        packages_installed("Python virtualenv support", ["python3-venv"])
        packages_installed("Node exporter", ["prometheus-node-exporter"], no_recommends=True)
    """
    installed = host.get_fact(DebPackages) or {}
    missing = [package for package in packages if package not in installed]
    if missing:
        apt.update(name=f"Refresh apt lists ({', '.join(missing)} missing)")
    apt.packages(name=name, packages=packages, no_recommends=no_recommends)
