"""A lab host's journal after a point: every line logged since, none from before.

Why not ``journalctl -u UNIT --after-cursor C``: on Debian 12 (systemd 252) a match
(``-u``, ``-t``) combined with ``--after-cursor`` loses the first matching entry after
the cursor whenever the cursor's own entry does not match (journalctl steps over two
entries, taking the first for the cursor's). Shown in the lab: a whole-journal cursor,
one ``logger -t X`` line, then ``journalctl -t X --after-cursor C`` prints nothing.
So the cursor is the whole journal's, the read is the whole journal after it, and the
unit or identifier is matched here.

Example:
    mark = journal.cursor(node)
    ...  # the check acts
    lines = journal.after(node, mark, units=["hearth-heal.service"])
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

SHOWN = "-- cursor: "


def cursor(node: Any) -> str:
    """Where the host's whole journal ends now."""
    out = node.check_output("sudo journalctl -q -n 0 --show-cursor --no-pager")
    mark = out.rpartition(SHOWN)[2].strip()
    assert mark, f"journalctl showed no cursor: {out!r}"
    return mark


def _matches(entry: dict[str, Any], units: set[str], idents: set[str]) -> bool:
    # -u UNIT's own rule: the unit's processes, and what systemd logs about it
    unit_fields = {entry.get("_SYSTEMD_UNIT"), entry.get("UNIT"), entry.get("OBJECT_SYSTEMD_UNIT")}
    return bool(units & unit_fields) or entry.get("SYSLOG_IDENTIFIER") in idents


def _message(entry: dict[str, Any]) -> str:
    msg = entry.get("MESSAGE", "")
    if isinstance(msg, list):  # journald stores a non-UTF-8 message as its bytes
        msg = bytes(msg).decode("utf-8", "replace")
    return str(msg)


def after(node: Any, mark: str, units: Iterable[str] = (), idents: Iterable[str] = ()) -> list[str]:
    """The messages logged after ``mark`` by any of ``units`` (as ``-u``) or ``idents`` (as ``-t``)."""
    units, idents = set(units), set(idents)
    assert units or idents, "name a unit or an identifier"
    out = node.check_output(f"sudo journalctl -q -o json --no-pager --after-cursor {shlex.quote(mark)}")
    entries = (json.loads(line) for line in out.splitlines() if line.startswith("{"))
    return [_message(e) for e in entries if _matches(e, units, idents)]
