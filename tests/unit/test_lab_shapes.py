"""Both lab shapes carry the same lab settings, and those pin the artifacts the lab serves.

A setting added to one lab inventory only (a new role's artifact URL, a stand-in's new
checksum) would break the other shape's deploy in CI; this says so at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hearth.lab.artifacts import publish

REPO = Path(__file__).resolve().parents[2]
SHAPES = [REPO / "inventory" / "lab.yml", REPO / "inventory" / "lab2.yml"]


def lab_settings(path: Path) -> tuple[str, dict]:
    """(this machine's bridge address in that lab, its top-level settings)."""
    data = yaml.safe_load(path.read_text())
    bridge = str(data["lan"]["cidr"]).split("/")[0].rsplit(".", 1)[0] + ".1"
    return bridge, data.get("settings", {})


def test_the_shapes_share_every_lab_setting_but_the_bridge_address() -> None:
    (first, one), (second, two) = (lab_settings(shape) for shape in SHAPES)
    as_first = yaml.safe_load(yaml.safe_dump(two).replace(second, first))
    assert as_first == one


@pytest.mark.parametrize("shape", SHAPES, ids=lambda p: p.name)
def test_the_ollama_checksum_is_the_stand_ins(shape: Path, tmp_path: Path) -> None:
    _, settings = lab_settings(shape)
    _, sha = publish.build_ollama_tarball(tmp_path)
    assert settings["ollama_sha256"]["amd64"] == sha, f"{shape.name}: ollama_sha256 is stale: {sha}"
    assert settings["ollama_version"] == publish.ollama_version()
