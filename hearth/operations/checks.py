"""Preconditions that fail one host, clearly, before anything changes on it."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation


@operation()
def requirement(problem: str | None):
    """
    Fail this host with ``problem`` (one line, prefixed ``hearth:``) when it is not
    ``None``; otherwise change nothing. pyinfra stops running operations on a failed
    host, so place it before the steps that need the requirement; other hosts go on.

    **Example:**

    .. code:: python

        checks.requirement(name="python3 >= 3.11", problem=systems.python_problem(version))
    """
    if problem is None:
        host.noop("requirement met")
        return
    yield StringCommand(f"echo {shlex.quote('hearth: ' + problem)} >&2; exit 1")
