"""One read of a host's state for many operations, kept while nothing on the host changes.

pyinfra reads an operation's facts afresh for each operation: for a file, three commands
(``files.put``); for a service, two (``systemd.service``). On a host where everything is
already right that is most of a deploy, and on an emulated lab machine each command costs
0.2-0.6 s (docs/lab.md). :func:`holds` answers "is this already right?" from one read of
a wider fact (a whole directory, every unit), shared by the operations that ask.

A read stays good only while nothing on the host changes: once any operation has run a
command on the host since the read, a read that says "right" is read again before it is
trusted, and one that says "not right" is trusted only so far that the caller runs
pyinfra's own operation, which reads its facts afresh. So a host where nothing changes
costs one read, and a wrong "right" cannot come from a read older than the last change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from pyinfra import host
from pyinfra.api import FactBase, Host, State
from pyinfra.context import ctx_state

T = TypeVar("T")

# Per deploy (pyinfra's State): (host, fact, arguments) -> (changes mark when read, the value read)
_READS: WeakKeyDictionary[State, dict[tuple[str, str, tuple[tuple[str, Any], ...]], tuple[int, Any]]] = (
    WeakKeyDictionary())


def ops_that_ran(state: State, on: Host) -> int:
    """How many of the host's operations have run commands so far in this deploy."""
    return sum(1 for data in state.ops[on].values() if data.operation_meta.executed)


def _key(fact: type[FactBase[Any]], arguments: dict[str, Any]) -> tuple[str, str, tuple[tuple[str, Any], ...]]:
    return host.name, f"{fact.__module__}.{fact.__name__}", tuple(sorted(arguments.items()))


def remember(fact: type[FactBase[T]], value: T, **arguments: Any) -> None:
    """
    Keep a read of ``fact`` the caller has just made on the current host, for :func:`holds`
    (as if it had read it now).

    **Example:**

    .. code:: python

        packages = host.get_fact(DebPackages)
        remember(DebPackages, packages)
    """
    state = ctx_state.get()
    _READS.setdefault(state, {})[_key(fact, arguments)] = (ops_that_ran(state, host), value)


def holds(fact: type[FactBase[T]], right: Callable[[T], bool], **arguments: Any) -> bool:
    """
    Whether ``right`` holds for ``fact`` on the current host, from one read of the fact per
    deploy while nothing on the host changes (see the module's docstring). ``False`` means
    "read it yourself": the caller then runs pyinfra's own operation.

    **Example:**

    .. code:: python

        if holds(Groups, lambda groups: "ollama" in groups):
            return  # already right: nothing to do
    """
    state = ctx_state.get()
    reads = _READS.setdefault(state, {})
    key = _key(fact, arguments)
    mark = ops_that_ran(state, host)
    if key in reads:
        read_at, value = reads[key]
        if read_at == mark:
            return right(value)
        if not right(value):  # stale: trusted only to say "not right"
            return False
    value = host.get_fact(fact, **arguments)
    reads[key] = (mark, value)
    return right(value)
