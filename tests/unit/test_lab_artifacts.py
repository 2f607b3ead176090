"""The lab's artifact builders: deterministic tarballs, signed apt repo, PEP 503 index."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from hearth.configs import ollama as ollama_configs
from hearth.lab.artifacts import aptrepo, publish, pyindex
from hearth.lab.artifacts.tarball import FIXED_MTIME, ZSTD_MAGIC, build_tar_gz, sha256_file, zstd_frame_raw

REPO = Path(__file__).resolve().parents[2]

needs_debian_tools = pytest.mark.skipif(
    not (shutil.which("dpkg-deb") and shutil.which("gpg")), reason="needs dpkg-deb and gpg"
)


def test_tarball_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    entries = {"bin/b": (b"bee", 0o755), "bin/a": (b"ay", 0o644), "lib/x/y": (b"why", 0o600)}
    sha1 = build_tar_gz(entries, tmp_path / "one.tgz")
    sha2 = build_tar_gz(dict(reversed(entries.items())), tmp_path / "two.tgz")
    assert sha1 == sha2 == sha256_file(tmp_path / "two.tgz")
    raw = (tmp_path / "one.tgz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    with tarfile.open(tmp_path / "one.tgz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["bin", "bin/a", "bin/b", "lib", "lib/x", "lib/x/y"]
    assert {m.mtime for m in members} == {FIXED_MTIME}
    assert {(m.uid, m.gid) for m in members} == {(0, 0)}
    assert next(m for m in members if m.name == "bin/b").mode == 0o755


def test_tarball_changes_when_content_does(tmp_path: Path) -> None:
    a = build_tar_gz({"f": (b"1", 0o644)}, tmp_path / "a.tgz")
    b = build_tar_gz({"f": (b"2", 0o644)}, tmp_path / "b.tgz")
    assert a != b


def test_ollama_tarball_looks_like_the_release(tmp_path: Path) -> None:
    """A stand-in version >= 0.14 ships as .tar.zst, like Ollama's releases since v0.14.0."""
    out, sha = publish.build_ollama_tarball(tmp_path)
    assert out.name == "ollama-linux-amd64.tar.zst"
    assert sha == publish.build_ollama_tarball(tmp_path / "again")[1]
    assert (tmp_path / "ollama-linux-amd64.tar.zst.sha256").read_text() == f"{sha}  {out.name}\n"
    raw = out.read_bytes()
    assert raw[:4] == ZSTD_MAGIC
    with tarfile.open(fileobj=io.BytesIO(unzstd(raw))) as tar:
        ollama = tar.getmember("bin/ollama")
        script = tar.extractfile(ollama).read()  # type: ignore[union-attr]
        assert "lib/ollama" in tar.getnames()
    assert ollama.mode == 0o755
    assert script.startswith(b"#!/usr/bin/env python3") and b"STAND-IN" in script


def unzstd(raw: bytes) -> bytes:
    """Decompress with the zstd tool itself (Debian package zstd; scripts/bootstrap installs it)."""
    if shutil.which("zstd") is None:
        pytest.skip("zstd is not installed (scripts/bootstrap installs it)")
    return subprocess.run(["zstd", "-dc"], input=raw, capture_output=True, timeout=30, check=True).stdout


@pytest.mark.parametrize("size", [0, 1, 131072, 131073, 300000])
def test_raw_zstd_frames_decode_with_the_real_tool(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert unzstd(zstd_frame_raw(data)) == data


def test_lab_inventory_pins_the_published_stand_in(tmp_path: Path) -> None:
    """inventory/lab.yml's version, URL and sha256 must name what publish() serves."""
    settings = yaml.safe_load((REPO / "inventory" / "lab.yml").read_text())["settings"]
    out, sha = publish.build_ollama_tarball(tmp_path)
    assert settings["ollama_version"] == publish.ollama_version()
    assert settings["ollama_sha256"]["amd64"] == sha
    (asset,) = ollama_configs.release_assets(settings["ollama_version"], "amd64", settings["ollama_url"],
                                             settings["ollama_sha256"], [])
    assert asset.url.endswith(f"/ollama/releases/download/v{publish.ollama_version()}/{out.name}")


def test_pep503_index_links_carry_sha256(tmp_path: Path) -> None:
    whl = pyindex.build_wheel(tmp_path / "packages", "Hearth_Probe", "1.0", {"m.py": "X = 1\n"})
    assert whl.read_bytes() == pyindex.build_wheel(
        tmp_path / "again", "Hearth_Probe", "1.0", {"m.py": "X = 1\n"}
    ).read_bytes()
    projects = pyindex.build_index(tmp_path)
    assert projects == {"hearth-probe": [whl.name]}
    page = (tmp_path / "simple" / "hearth-probe" / "index.html").read_text()
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    assert f'href="../../packages/{whl.name}#sha256={digest}"' in page
    assert 'href="hearth-probe/"' in (tmp_path / "simple" / "index.html").read_text()


@pytest.mark.parametrize(
    ("filename", "project"),
    [("Foo_Bar-1.0-py3-none-any.whl", "foo-bar"), ("foo.bar-2.0.tar.gz", "foo-bar")],
)
def test_project_names_are_normalised(filename: str, project: str) -> None:
    assert pyindex.project_of(filename) == project


@needs_debian_tools
def test_apt_repo_is_indexed_and_signed(tmp_path: Path) -> None:
    src = publish.STANDINS / "debs" / "hearth-standin-probe"
    deb = aptrepo.build_deb(src, tmp_path / "repo" / "pool" / "main")
    assert deb.read_bytes() == aptrepo.build_deb(src, tmp_path / "again").read_bytes()
    fpr = aptrepo.build_repo(tmp_path / "repo", tmp_path / "gpg")
    dist = tmp_path / "repo" / "dists" / "stable"
    packages = (dist / "main" / "binary-amd64" / "Packages").read_text()
    assert "Package: hearth-standin-probe\n" in packages
    assert f"Filename: pool/main/{deb.name}\n" in packages
    assert f"SHA256: {hashlib.sha256(deb.read_bytes()).hexdigest()}\n" in packages
    gz = (dist / "main" / "binary-amd64" / "Packages.gz").read_bytes()
    assert gzip.GzipFile(fileobj=io.BytesIO(gz)).read().decode() == packages
    release = (dist / "Release").read_text()
    sha = hashlib.sha256(packages.encode()).hexdigest()
    assert f" {sha} {len(packages.encode()):>8} main/binary-amd64/Packages\n" in release
    keyring = tmp_path / "repo" / "hearth-lab-archive-keyring.gpg"
    ok = subprocess.run(["gpgv", "--keyring", str(keyring), str(dist / "InRelease")],
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert fpr[-16:] in ok.stderr
    (dist / "Release").write_text(release.replace("stable", "stab1e"))
    bad = subprocess.run(["gpgv", "--keyring", str(keyring), str(dist / "Release.gpg"),
                          str(dist / "Release")], capture_output=True, check=False)  # fmt: skip
    assert bad.returncode != 0  # a tampered Release fails its detached signature
