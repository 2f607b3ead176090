"""Role defaults: the values in ``group_data/*.py`` that an inventory may override."""

from __future__ import annotations

import runpy
import types
from functools import cache
from pathlib import Path
from typing import Any

GROUP_DATA = Path(__file__).resolve().parents[1] / "group_data"


@cache
def group_defaults() -> dict[str, Any]:
    """Every public name defined in group_data/*.py, merged (all.py first)."""
    defaults: dict[str, Any] = {}
    files = sorted(GROUP_DATA.glob("*.py"), key=lambda p: (p.stem != "all", p.stem))
    for file in files:
        for key, value in runpy.run_path(str(file)).items():
            if not key.startswith("_") and not isinstance(value, types.ModuleType | types.FunctionType | type):
                defaults[key] = value
    return defaults
