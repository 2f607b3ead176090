"""The base image's build line and cache key (hearth/lab/image.py): no build runs here."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.lab import image


def test_the_build_is_mmdebstrap_with_usr_merged_as_debian_12_does() -> None:
    argv = image.build_argv(Path("/cache/.build-x"), "amd64")
    assert argv[0] == "mmdebstrap" and "--variant=minbase" in argv and "--architectures=amd64" in argv
    # the merged-usr hook: usr-is-merged, as Debian 12's installer; without it apt picks
    # usrmerge for init-system-helpers, which pulls in perl
    assert f"--hook-dir={image.MERGED_USR_HOOKS}" in argv
    assert f"--include={','.join(image.PACKAGES)}" in argv
    assert argv[-3:] == [image.SUITE, "/cache/.build-x", image.MIRROR]


def test_the_cache_key_covers_the_build_line(monkeypatch: pytest.MonkeyPatch) -> None:
    key = image.base_image_key("hearth")
    assert len(key) == 16 and key == image.base_image_key("hearth") != image.base_image_key("other")
    assert image.base_image_key("hearth", "arm64") != key
    monkeypatch.setattr(image, "MERGED_USR_HOOKS", "/elsewhere")
    assert image.base_image_key("hearth") != key  # another build line: another image


def test_a_cached_image_is_reused_under_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / f"base-{image.base_image_key('hearth')}"
    (target / "etc").mkdir(parents=True)
    (target / "etc/os-release").write_text("ID=debian\n")
    monkeypatch.setattr(image, "run", lambda *a, **k: pytest.fail("a cached image must not be rebuilt"))
    assert image.ensure_base_image(tmp_path, "hearth") == target
