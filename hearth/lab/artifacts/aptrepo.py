"""A signed apt repository: pool + dists/<suite>/ with Release, InRelease, Release.gpg.

The lab generates its own signing key (kept in ``<lab root>/gpg``); roles install
the exported keyring and reference it with ``signed-by``, as with any vendor repo.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from hearth.lab.artifacts.tarball import FIXED_MTIME
from hearth.lab.sh import LabError, run

KEY_UID = "hearth lab artifacts <lab@hearth.invalid>"
RELEASE_DATE = "Tue, 14 Nov 2023 22:13:20 UTC"  # fixed: deterministic Release files


def _gpg(home: Path, *args: str, input: str | None = None) -> str:
    return run(["gpg", "--batch", "--quiet", "--homedir", str(home), *args], input=input).stdout


def ensure_signing_key(home: Path) -> str:
    """Create the lab's ed25519 signing key in ``home`` if absent; return its fingerprint."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    listing = run(["gpg", "--batch", "--homedir", str(home), "--with-colons",
                   "--list-secret-keys"], check=False).stdout  # fmt: skip
    if "fpr:" not in listing:
        _gpg(home, "--passphrase", "", "--pinentry-mode", "loopback",
             "--quick-gen-key", KEY_UID, "ed25519", "sign", "never")  # fmt: skip
        listing = _gpg(home, "--with-colons", "--list-secret-keys")
    for line in listing.splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    raise LabError(f"no signing key in {home}")


def build_deb(src: Path, out_dir: Path) -> Path:
    """Build ``src`` (a tree with DEBIAN/control) into a .deb with fixed timestamps."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / src.name
        shutil.copytree(src, tree)
        for p in [tree, *tree.rglob("*")]:
            os.utime(p, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
        fields = dict(
            line.split(": ", 1) for line in (tree / "DEBIAN/control").read_text().splitlines()
            if ": " in line and not line.startswith(" ")
        )  # fmt: skip
        out = out_dir / f"{fields['Package']}_{fields['Version']}_{fields['Architecture']}.deb"
        run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)],
            env={"SOURCE_DATE_EPOCH": str(FIXED_MTIME)})  # fmt: skip
    return out


def packages_stanza(deb: Path, repo: Path) -> str:
    """The Packages-file stanza of ``deb`` (control fields + Filename, Size, hashes)."""
    control = run(["dpkg-deb", "-f", str(deb)]).stdout.rstrip("\n")
    data = deb.read_bytes()
    return (
        f"{control}\nFilename: {deb.relative_to(repo)}\nSize: {len(data)}\n"
        f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
    )


def build_repo(
    repo: Path, gpg_home: Path, *, suite: str = "stable", component: str = "main",
    arch: str = "amd64",
) -> str:  # fmt: skip
    """Index ``repo/pool/**.deb`` into ``dists/<suite>``, sign it; return key fingerprint."""
    try:
        return _build_repo(repo, gpg_home, suite, component, arch)
    finally:  # gpg leaves an agent behind; the lab leaves no process it does not track
        run(["gpgconf", "--homedir", str(gpg_home), "--kill", "gpg-agent"], check=False)


def _build_repo(repo: Path, gpg_home: Path, suite: str, component: str, arch: str) -> str:
    fpr = ensure_signing_key(gpg_home)
    debs = sorted((repo / "pool").rglob("*.deb"))
    dist = repo / "dists" / suite
    bindir = dist / component / f"binary-{arch}"
    bindir.mkdir(parents=True, exist_ok=True)
    packages = "\n".join(packages_stanza(d, repo) for d in debs)
    (bindir / "Packages").write_text(packages)
    with (bindir / "Packages.gz").open("wb") as f, gzip.GzipFile(
        fileobj=f, mode="wb", mtime=0, filename=""
    ) as gz:
        gz.write(packages.encode())
    release = release_text(dist, suite, component, arch)
    (dist / "Release").write_text(release)
    for name in ("InRelease", "Release.gpg"):
        (dist / name).unlink(missing_ok=True)
    _gpg(gpg_home, "--local-user", fpr, "--digest-algo", "SHA256", "--clearsign",
         "--output", str(dist / "InRelease"), str(dist / "Release"))  # fmt: skip
    _gpg(gpg_home, "--local-user", fpr, "--digest-algo", "SHA256", "--armor", "--detach-sign",
         "--output", str(dist / "Release.gpg"), str(dist / "Release"))  # fmt: skip
    keyring = repo / "hearth-lab-archive-keyring.gpg"
    keyring.unlink(missing_ok=True)
    _gpg(gpg_home, "--output", str(keyring), "--export", fpr)
    (repo / "hearth-lab-archive-keyring.asc").write_text(_gpg(gpg_home, "--armor", "--export", fpr))
    return fpr


def release_text(dist: Path, suite: str, component: str, arch: str) -> str:
    """The Release file for the index files under ``dist``."""
    files = sorted(p for p in (dist / component).rglob("*") if p.is_file())
    def line(p: Path, algo: str) -> str:
        digest = hashlib.new(algo, p.read_bytes()).hexdigest()
        return f" {digest} {p.stat().st_size:>8} {p.relative_to(dist)}"

    md5 = [line(p, "md5") for p in files]
    sha = [line(p, "sha256") for p in files]
    return (
        "Origin: hearth-lab\nLabel: hearth lab artifacts\n"
        f"Suite: {suite}\nCodename: {suite}\nDate: {RELEASE_DATE}\n"
        f"Architectures: {arch} all\nComponents: {component}\n"
        "Description: hearth lab stand-in packages (not for production)\n"
        "MD5Sum:\n" + "\n".join(md5) + "\nSHA256:\n" + "\n".join(sha) + "\n"
    )
