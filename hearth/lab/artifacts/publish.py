"""Publish the lab's artifacts: stand-in binaries, the apt repo, the pip index.

Everything lands under ``<lab root>/artifacts`` (served at the bridge address on
port 8585) plus ``manifest.json`` saying what is where, with each binary's sha256:

    ollama/releases/download/v<ver>/ollama-linux-{amd64,arm64}.tar.zst   (+ .sha256; .tgz before 0.14)
    k3s/releases/download/<ver>/{k3s,k3s-arm64,sha256sum-<arch>.txt}   (the k3s stand-in)
    apt/  dists/stable/{Release,InRelease,Release.gpg}, pool/, hearth-lab-archive-keyring.{gpg,asc}
    pypi/ simple/<project>/index.html, packages/<file>   (gateway wheels mirrored; the vllm stand-in wheel)
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

from hearth.configs.ollama import archive_ext
from hearth.lab.artifacts import aptrepo, nvidia, pyindex, vllm_standin
from hearth.lab.artifacts.tarball import build_tar_gz, build_tar_zst
from hearth.lab.cycle import REPO

STANDINS = REPO / "tests" / "standins"


def ollama_version() -> str:
    """The stand-in's VERSION constant (read from its source, not imported)."""
    src = (STANDINS / "ollama" / "ollama.py").read_text()
    match = re.search(r'^VERSION = "([^"]+)"', src, re.M)
    assert match, "ollama stand-in has no VERSION"
    return match.group(1)


ARCHES = ("amd64", "arm64")


def build_ollama_tarball(out_dir: Path, arch: str = "amd64") -> tuple[Path, str]:
    """``ollama-linux-<arch>.tar.zst`` (``.tgz`` for a version before 0.14) with ``bin/ollama``
    and ``lib/ollama/`` like the real release; (path, sha256).

    The stand-in is one Python script for every architecture; a non-amd64 build also
    carries ``lib/ollama/standin-arch`` naming its arch, so each build has its own
    checksum as real builds do, and a download of the wrong one fails its check.
    """
    script = (STANDINS / "ollama" / "ollama.py").read_bytes()
    ext = archive_ext(ollama_version())
    out = out_dir / f"ollama-linux-{arch}{ext}"
    entries = {"bin/ollama": (script, 0o755),
               "lib/ollama/STANDIN": (b"hearth lab stand-in: the real release ships its libraries here\n", 0o644)}
    if arch != "amd64":
        entries["lib/ollama/standin-arch"] = (f"{arch}\n".encode(), 0o644)
    sha = (build_tar_zst if ext == ".tar.zst" else build_tar_gz)(entries, out)
    out.with_name(out.name + ".sha256").write_text(f"{sha}  {out.name}\n")
    return out, sha


def k3s_standin_source() -> bytes:
    """The k3s stand-in with the pinned release's recorded config keys injected (it refuses others)."""
    from hearth.inventory.k3s_checks import recorded_keys

    keys = recorded_keys()
    known = {role: dict(sorted(keys[role].items())) for role in ("server", "agent")}
    src = (STANDINS / "k3s" / "k3s.py").read_text()
    marker = "KNOWN_KEYS: dict[str, dict[str, str]] = {}"
    assert marker in src, "k3s stand-in has no KNOWN_KEYS marker"
    injected = "KNOWN_KEYS: dict[str, dict[str, str]] = " + "{" + ", ".join(
        f"{json.dumps(role)}: {json.dumps(known[role], sort_keys=True)}" for role in ("server", "agent")) + "}"
    return src.replace(marker, injected, 1).encode()


def k3s_version() -> str:
    match = re.search(r'^VERSION = "([^"]+)"', (STANDINS / "k3s" / "k3s.py").read_text(), re.M)
    assert match, "k3s stand-in has no VERSION"
    return match.group(1)


def publish_k3s(art: Path, base_url: str) -> dict[str, str]:
    """The release layout of github.com/k3s-io/k3s: ``k3s``, ``k3s-arm64``, ``sha256sum-<arch>.txt``.

    The stand-in is a python3 script, so the same bytes serve both architectures.
    """
    version = k3s_version()
    rel = art / "k3s" / "releases" / "download" / version
    rel.mkdir(parents=True, exist_ok=True)
    data = k3s_standin_source()
    entry = {"version": version, "url": f"{base_url}/k3s/releases/download/{{version}}/{{asset}}"}
    for arch, asset in (("amd64", "k3s"), ("arm64", "k3s-arm64")):
        (rel / asset).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        (rel / f"sha256sum-{arch}.txt").write_text(f"{sha}  {asset}\n")
        entry[f"sha256_{arch}"] = sha
    return entry


def gateway_requirements() -> list[str]:
    """The gateway's pinned runtime dependencies (group_data/gateway.py), mirrored for roles/gateway."""
    from hearth.deploy_data import group_defaults

    return list(group_defaults()["gateway_python_packages"])


def publish(root: Path, base_url: str) -> dict[str, dict[str, str]]:
    """(Re)build the artifact tree under ``root/artifacts``; return and write the manifest."""
    art = root / "artifacts"
    art.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, str]] = {}

    version = ollama_version()
    rel = f"ollama/releases/download/v{version}"
    builds = {arch: build_ollama_tarball(art / rel, arch) for arch in ARCHES}
    tgz, sha = builds["amd64"]
    manifest["ollama"] = {"version": version, "url": f"{base_url}/{rel}/{tgz.name}", "sha256": sha}
    for arch, (path, digest) in builds.items():  # per architecture, as inventories pin them
        manifest["ollama"][f"sha256_{arch}"] = digest
        manifest["ollama"][f"url_{arch}"] = f"{base_url}/{rel}/{path.name}"

    manifest["k3s"] = publish_k3s(art, base_url)

    apt = art / "apt"
    if apt.exists():
        shutil.rmtree(apt)
    with tempfile.TemporaryDirectory() as work:
        for src in sorted((STANDINS / "debs").iterdir()):
            if (src / "DEBIAN" / "control").exists():
                if src.name == nvidia.TOOLKIT:  # + the nvidia-smi stand-in and the lab's GPU table
                    src = nvidia.toolkit_tree(src, STANDINS, Path(work), root)
                aptrepo.build_deb(src, apt / "pool" / "main")
    fpr = aptrepo.build_repo(apt, root / "gpg")
    manifest["apt"] = {
        "url": f"{base_url}/apt", "suite": "stable", "component": "main", "fingerprint": fpr,
        "key_url": f"{base_url}/apt/hearth-lab-archive-keyring.gpg",
    }  # fmt: skip

    pypi = art / "pypi"
    if pypi.exists():
        shutil.rmtree(pypi)
    pyindex.build_wheel(pypi / "packages", "hearth-standin-probe", "1.0.0",
                        {"hearth_standin_probe.py": 'STANDIN = "hearth lab pip index"\n'})  # fmt: skip
    wheel = vllm_standin.build_wheel(pypi / "packages")  # `vllm` stand-in: pinned version + "+standin"
    pyindex.mirror(gateway_requirements(), root / "cache" / "wheels", pypi / "packages")
    pyindex.build_index(pypi)
    manifest["pip"] = {"index_url": f"{base_url}/pypi/simple/", "vllm_version": vllm_standin.standin_version(),
                       "vllm_wheel": wheel.name}

    (art / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
