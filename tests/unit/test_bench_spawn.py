"""The bench's child processes run the checkout the bench was started from.

A worktree whose virtualenv belongs to another checkout (its editable install points
there) used to bench that other checkout's gateway, relay and mock: the children were
started with ``python -m hearth...`` and no ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hearth
from hearth.bench import gateway_procs as gp

ROOT = str(Path(hearth.__file__).resolve().parents[1])
_WHICH = [sys.executable, "-c", "import hearth; print(hearth.__file__)"]


def _env_of_spawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                  env: dict[str, str | None] | None = None) -> dict[str, str]:
    seen: dict[str, dict[str, str]] = {}

    def fake_popen(argv: list[str], **kw: object) -> object:
        seen["env"] = kw["env"]  # type: ignore[assignment]
        return object()

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    gp.spawn("x", ["true"], tmp_path, None, env)
    return seen["env"]


def test_hearth_root_is_this_checkout() -> None:
    assert gp.hearth_root() == ROOT
    assert (Path(ROOT) / "hearth" / "__init__.py").is_file()


def test_spawn_puts_this_checkout_on_the_childs_path(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert _env_of_spawn(monkeypatch, tmp_path)["PYTHONPATH"] == ROOT


def test_spawn_keeps_a_given_pythonpath_first(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    # the A/B bench sets PYTHONPATH to the version under test: that one must win
    monkeypatch.setenv("PYTHONPATH", "/versions/before")
    assert _env_of_spawn(monkeypatch, tmp_path)["PYTHONPATH"] == (
        "/versions/before" + os.pathsep + ROOT)
    assert _env_of_spawn(monkeypatch, tmp_path, {"PYTHONPATH": "/v/after"})["PYTHONPATH"] == (
        "/v/after" + os.pathsep + ROOT)


def test_a_spawned_child_imports_this_checkouts_hearth(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    p = gp.spawn("which", _WHICH, tmp_path, None)
    assert p.wait(60) == 0
    assert (tmp_path / "which.log").read_text().strip() == hearth.__file__
