"""Helpers for unit tests: load the example inventory, change it, write it back."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventory" / "example.yml"


@pytest.fixture(scope="session")
def example_data() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


@pytest.fixture
def write_inventory(tmp_path: Path, example_data: dict[str, Any]) -> Callable[..., Path]:
    """Copy the example, let a test change it, write it to a temp file."""

    def write(change: Callable[[dict[str, Any]], None] | None = None, name: str = "lab.yml") -> Path:
        data = copy.deepcopy(example_data)
        if change is not None:
            change(data)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
