"""`python -m hearth.bench.ab`: structure, not speed (a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hearth.bench import ab

ROOT = str(Path(__file__).resolve().parents[2])  # this checkout: its hearth package


def test_ab_runs_a_version_beside_the_relay(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    out = tmp_path / "ab.jsonl"
    assert ab.main(["--concurrency", "2", "--rounds", "2", "--out", str(out), f"this={ROOT}"]) == 0
    res = json.loads(out.read_text())
    assert res["concurrency"] == 2
    for p in ("bare", "this"):
        assert res[p]["cpu_ms"] > 0
        assert res[p]["added_p50_ms"] == res[p]["added_p50_ms"]  # not NaN: streams arrived
    assert res["bare"]["cpu_ratio_vs_bare"] == 1
    assert "this" in capsys.readouterr().out
    assert list((tmp_path / "tmp").iterdir()) == []  # its work directory is gone


def test_ab_refuses_a_directory_without_hearth(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        ab.main(["x=" + str(tmp_path)])
