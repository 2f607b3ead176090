"""Facts about Python packages in a virtualenv."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class PipFreeze(FactBase[dict[str, list[str]]]):
    """
    ``pip freeze --all`` of one pip: package name -> [version]. Unlike pyinfra's
    ``PipPackages`` it keeps PEP 440 local versions (``0.11.0+standin``, ``2.8.0+cu128``);
    empty when that pip does not exist yet.

    .. code:: python

        host.get_fact(PipFreeze, pip="/opt/vllm/venv/bin/pip")  # {"vllm": ["0.11.0+standin"], ...}
    """

    default = dict

    def command(self, pip: str) -> str:
        return f"{shlex.quote(pip)} freeze --all 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, list[str]]:
        packages: dict[str, list[str]] = {}
        for line in output:
            name, sep, version = line.strip().partition("==")
            if sep and name and version:
                packages.setdefault(name, []).append(version)
        return packages
