"""Every configuration file the deploy writes, computed from the inventory.

A role asks this package for its files and puts them on the host; `hearth render`
writes the very same files to a folder for review. Python computes the values
(``ConfigFile.context``); the templates under ``templates/`` only lay them out.
Values that only a host can tell (e.g. a WireGuard public key, generated on the
host) come in as ``facts``; without them, a clearly marked placeholder is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@dataclass(frozen=True)
class ConfigFile:
    """One file on one host: where it goes, how it is laid out, with what values."""

    dest: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    mode: str = "0644"
    user: str = "root"
    group: str = "root"

    def render(self) -> str:
        return _environment().get_template(self.template).render(**self.context)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def placeholder(what: str) -> str:
    """Stands where a value is only known on the host (shown by `hearth render`)."""
    return f"<{what}: read from the host at deploy>"
