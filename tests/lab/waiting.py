"""Bounded waits for lab checks: poll until something holds, never a fixed sleep.

One helper for every lab module: ``wait_for(what, check, deadline_s, period_s)`` polls
``check`` every ``period_s`` seconds until its value is done (truthy by default) and
returns that value; after ``deadline_s`` seconds it fails naming what was awaited and
the last value seen, so a failure in CI says what the lab looked like when time ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
SHOWN_CHARS = 2000  # a journal or a metrics page is cut to its last characters in a failure


def last_chars(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut to its last ``limit`` characters (the end of a log is what matters)."""
    text = repr(value)
    return text if len(text) <= limit else f"...{text[-limit:]}"


def wait_for(what: str, check: Callable[[], T], deadline_s: float, period_s: float, *,
             done: Callable[[T], object] = bool, show: Callable[[T], str] = last_chars) -> T:
    """Poll ``check()`` until ``done(value)``; return that value.

    ``check`` runs at once, then every ``period_s`` seconds, the last time at the
    deadline. If no value is done within ``deadline_s`` seconds: AssertionError naming
    ``what`` and the last value seen (as ``show`` renders it).
    """
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if done(value):
            return value
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"not within {deadline_s:.0f}s: {what}; last seen: {show(value)}")
        time.sleep(min(period_s, left))
