"""`python -m hearth.bench.ab`: structure, not speed (a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hearth.bench import ab, preupstream

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


def test_ab_measures_cpu_before_the_upstream_call(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    out = tmp_path / "ab.jsonl"
    assert ab.main(["--concurrency", "2", "--rounds", "2", "--preupstream", "--out", str(out),
                    f"this={ROOT}"]) == 0
    res = json.loads(out.read_text())
    for p in ("bare", "this"):  # the relay and hearth both reached their upstream call
        assert 0 < res[p]["preupstream_cpu_us_p50"] < 1e6, res[p]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_preupstream_medians_per_label(tmp_path: Path) -> None:
    (tmp_path / "bare-1.txt").write_text("1000 1100\n3000 3100\n2000 2000\n")
    (tmp_path / "this-2.txt").write_text("5000 5000\n")
    (tmp_path / "this-3.txt").write_text("7000 7000\n9000 9000\n")
    assert preupstream.p50_us(tmp_path) == {"bare": 2.0, "this": 7.0}
