"""Append-only JSONL logs (decisions, cloud audit)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any


class JsonlLog:
    """One JSON object per line, appended; a None path discards."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    @property
    def enabled(self) -> bool:
        """Whether records are kept (callers may skip building them otherwise)."""
        return bool(self.path)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (flushed per line)."""
        if not self.path:
            return
        if self._fh is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            self._fh = open(fd, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._fh.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
