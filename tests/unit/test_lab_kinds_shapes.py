"""The machine-kind lab inventories (tests/lab/kinds*.yml) pin the stand-ins the lab serves, per arch.

They run by hand, not in CI's two shapes, so a stand-in's new checksum would otherwise
go unnoticed until someone's arm64 or VM session fails on the download.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hearth.lab.artifacts import publish

REPO = Path(__file__).resolve().parents[2]
KINDS = sorted((REPO / "tests" / "lab").glob("kinds*.yml"))


@pytest.mark.parametrize("inventory", KINDS, ids=lambda p: p.name)
def test_every_pinned_ollama_checksum_is_the_stand_ins_build_for_that_arch(inventory: Path, tmp_path: Path) -> None:
    settings = yaml.safe_load(inventory.read_text())["settings"]
    assert settings["ollama_version"] == publish.ollama_version()
    for arch, sha in settings["ollama_sha256"].items():
        _, built = publish.build_ollama_tarball(tmp_path, arch)
        assert sha == built, f"{inventory.name}: ollama_sha256.{arch} is stale: {built}"
