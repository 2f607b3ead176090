"""Load an inventory file: parse, validate, and report every problem at once.

Each problem is one line ``FILE:LINE: KEY.PATH: what is wrong``, so an editor can
jump to it. Nothing here connects to a host.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hearth.inventory.model import Inventory
from hearth.inventory.validate import Problem, cross_checks

REPO = Path(__file__).resolve().parents[2]


class InventoryError(Exception):
    """The inventory is invalid; ``lines`` holds one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_inventory(path: str | Path, defaults: dict[str, Any] | None = None) -> Inventory:
    """Parse and validate an inventory file; raise InventoryError listing every problem.

    ``defaults`` are the group_data defaults that ``settings`` may override; when
    given, an unknown setting is an error.

    Example:
        inv = load_inventory("inventory/example.yml")
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InventoryError([f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError([_syntax_problem(path, exc)]) from None
    if not isinstance(data, dict):
        raise InventoryError([f"{path}: the inventory must be a mapping of sections"])
    duplicates = _duplicate_keys(path, node)
    if duplicates:
        raise InventoryError(duplicates)
    lines = _line_index(node)
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(_format(path, lines, _schema_problems(exc))) from None
    problems = cross_checks(inventory, defaults)
    if problems:
        raise InventoryError(_format(path, lines, problems))
    return inventory


@cache
def load_cached(path: str) -> Inventory:
    """Load once per process (roles call this for every host)."""
    from hearth.deploy_data import group_defaults

    return load_inventory(path, group_defaults())


def _syntax_problem(path: Path, exc: yaml.YAMLError) -> str:
    """One ``FILE:LINE:COLUMN: what`` line for a YAML syntax error (PyYAML's own text
    names an anonymous ``<unicode string>``)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{path}: not valid YAML: {exc}"
    mark = exc.problem_mark
    problem = str(exc.problem or "syntax error")
    if "'\\t'" in problem or "\t" in problem:
        problem = "a tab character: YAML indents with spaces only"
    where = f"{path}:{mark.line + 1}:{mark.column + 1}"
    context = f" ({exc.context}, line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
    return f"{where}: not valid YAML: {problem}{context}"


def _duplicate_keys(path: Path, node: yaml.Node | None, prefix: str = "") -> list[str]:
    """Keys given twice in one mapping, at any depth. YAML keeps the last silently (a host
    block pasted twice would replace the first host without a word), so it is an error."""
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            dotted = f"{prefix}.{name}" if prefix else name
            line = key.start_mark.line + 1
            if name in seen:
                problems.append(f"{path}:{line}: {dotted}: duplicate key: also defined on line {seen[name]} "
                                "(YAML would silently keep only the last one)")
            else:
                seen[name] = line
            problems += _duplicate_keys(path, value, dotted)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(path, item, f"{prefix}[{i}]")
    return problems


def _schema_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not _is_validator_tag(part)]
        problems.append(Problem(_dotted(loc), _message(error)))
    return problems


def _is_validator_tag(part: Any) -> bool:
    # pydantic adds tags such as 'function-after[_mac()]' or 'str' for unions
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind == "model_type" or "secret written in plain text" in message:
        return message  # never echo what looks like a secret into the output
    return f"{message} (got {error['input']!r})"


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _format(path: Path, lines: dict[str, int], problems: list[Problem]) -> list[str]:
    out = []
    for problem in problems:
        line = _nearest_line(lines, problem.path)
        where = f"{path}:{line}" if line else str(path)
        out.append(f"{where}: {problem.path}: {problem.message}")
    return out


def _nearest_line(lines: dict[str, int], dotted: str) -> int | None:
    while dotted:
        if dotted in lines:
            return lines[dotted]
        cut = max(dotted.rfind("."), dotted.rfind("["))
        dotted = dotted[:cut] if cut > 0 else ""
    return None


def _line_index(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Map dotted key paths to 1-based line numbers from the YAML node tree."""
    index: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            index[path] = key.start_mark.line + 1
            index.update(_line_index(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}[{i}]"
            index[path] = item.start_mark.line + 1
            index.update(_line_index(item, path))
    return index
