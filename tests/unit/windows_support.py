"""Helpers for the Windows unit tests: run a hearth operation against fake facts,
read back the PowerShell it would send, and check scripts with a PowerShell grammar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import tree_sitter
import tree_sitter_powershell
from pyinfra.context import ctx_host, ctx_state

from hearth import powershell as ps

Facts = dict[str, Any]


class FakeHost:
    """Enough of pyinfra's Host for an operation body: facts by class name, noops."""

    def __init__(self, facts: Facts, data: dict[str, Any] | None = None) -> None:
        self.facts = facts
        self.noops: list[str] = []
        self.data = data or {}
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        self.asked.append((cls.__name__, kwargs))
        value = self.facts.get(cls.__name__)
        if callable(value):
            return value(**kwargs)
        return value

    def noop(self, message: str) -> None:
        self.noops.append(message)


def scripts(op: Any, facts: Facts, executing: bool = False, **kwargs: Any) -> list[str]:
    """The scripts (without hearth's preamble) ``op`` yields on a host with ``facts``,
    while pyinfra plans the deploy or (``executing``) runs it."""
    fake = FakeHost(facts)
    with ctx_host.use(fake), ctx_state.use(SimpleNamespace(is_executing=executing)):
        commands = list(op._inner(**kwargs))
    out = []
    for command in commands:
        text = ps.decode(command.get_raw_value())
        assert text.startswith(ps.PREAMBLE)
        out.append(text[len(ps.PREAMBLE):])
    return out


def by_kwargs(table: dict[tuple[Any, ...], Any]) -> Callable[..., Any]:
    """A fact whose value depends on its arguments: {(arg values...): value}."""
    return lambda **kwargs: table.get(tuple(kwargs.values()))


_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse_problems(script: str) -> list[str]:
    """ERROR and MISSING nodes of ``script`` under tree-sitter-powershell (empty: it parses)."""
    tree = _PARSER.parse(script.encode())

    def walk(node: tree_sitter.Node) -> Iterator[str]:
        if node.type == "ERROR" or node.is_missing:
            line = script.splitlines()[node.start_point[0]] if script.splitlines() else ""
            yield f"{'MISSING' if node.is_missing else 'ERROR'} at {node.start_point}: {line.strip()[:100]}"
        for child in node.children:
            yield from walk(child)

    problems = list(walk(tree.root_node))
    if tree.root_node.has_error and not problems:
        problems.append("tree has an error")
    return problems
