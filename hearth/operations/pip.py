"""pip requirements in a virtualenv, compared the way PEP 503 names them."""

from __future__ import annotations

import re
import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation

from hearth.facts.pip import PipFreeze


def canonical(name: str) -> str:
    """PEP 503 name: `PyYAML`, `prometheus_client` and `prometheus-client` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


@operation()
def pinned(virtualenv: str, requirements: list[str], install_args: str = ""):
    """
    Install exactly pinned requirements (``name==version``) into a virtualenv,
    only when one is missing or at another version.

    + virtualenv: the virtualenv's path (its ``bin/pip`` is used)
    + requirements: ``name==version`` strings
    + install_args: extra ``pip install`` arguments (index URL, trusted host)

    **Example:**

    .. code:: python

        pip.pinned(
            name="Gateway dependencies",
            virtualenv="/opt/hearth-gateway/venv",
            requirements=["aiohttp==3.14.5", "PyYAML==6.0.3"],
            install_args="--index-url https://pypi.org/simple",
        )
    """
    pip = f"{virtualenv}/bin/pip"
    facts = host.get_fact(PipFreeze, pip=pip) or {}
    present = {canonical(name): versions for name, versions in facts.items()}
    wanted = dict(requirement.split("==", 1) for requirement in requirements)
    stale = [f"{name}=={version}" for name, version in wanted.items()
             if version not in present.get(canonical(name), [])]
    if not stale:
        host.noop("every requirement is installed at its pinned version")
        return
    yield StringCommand(f"{shlex.quote(pip)} install --quiet {install_args} " + " ".join(map(shlex.quote, stale)))
