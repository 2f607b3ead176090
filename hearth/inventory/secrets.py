"""Secret references: the inventory names where a secret lives, never the secret.

A reference is ``env:NAME`` (an environment variable of the person running the
deploy) or ``file:PATH`` (a file readable by them). Anything else in a secret field
is refused as a plain-text secret.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:\S+)$")


class SecretError(ValueError):
    """A secret reference could not be resolved."""


def _check_ref(value: str) -> str:
    if not SECRET_REF.match(value):
        raise ValueError(
            "looks like a secret written in plain text; write a reference instead: "
            "env:NAME or file:PATH"
        )
    return value


SecretRef = Annotated[str, AfterValidator(_check_ref)]


def resolve_secret(ref: str) -> str:
    """Return the secret a reference points at, stripped of surrounding white space.

    Example:
        resolve_secret("env:HEARTH_ADMIN_TOKEN")
    """
    kind, _, where = _check_ref(ref).partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise SecretError(f"{ref}: environment variable {where} is not set")
    else:
        path = Path(where).expanduser()
        try:
            value = path.read_text()
        except OSError as exc:
            raise SecretError(f"{ref}: cannot read {path}: {exc.strerror}") from exc
    value = value.strip()
    if not value:
        raise SecretError(f"{ref}: the secret is empty")
    return value
