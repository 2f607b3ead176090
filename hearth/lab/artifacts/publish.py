"""Publish the lab's artifacts: stand-in binaries, the apt repo, the pip index.

Everything lands under ``<lab root>/artifacts`` (served at the bridge address on
port 8585) plus ``manifest.json`` saying what is where, with each binary's sha256:

    ollama/releases/download/v<ver>/ollama-linux-amd64.tgz   (+ .sha256)
    apt/  dists/stable/{Release,InRelease,Release.gpg}, pool/, hearth-lab-archive-keyring.{gpg,asc}
    pypi/ simple/<project>/index.html, packages/<file>
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from hearth.lab.artifacts import aptrepo, pyindex
from hearth.lab.artifacts.tarball import build_tar_gz
from hearth.lab.cycle import REPO

STANDINS = REPO / "tests" / "standins"


def ollama_version() -> str:
    """The stand-in's VERSION constant (read from its source, not imported)."""
    src = (STANDINS / "ollama" / "ollama.py").read_text()
    match = re.search(r'^VERSION = "([^"]+)"', src, re.M)
    assert match, "ollama stand-in has no VERSION"
    return match.group(1)


def build_ollama_tarball(out_dir: Path) -> tuple[Path, str]:
    """``ollama-linux-amd64.tgz`` with ``bin/ollama`` like the real release; (path, sha256)."""
    script = (STANDINS / "ollama" / "ollama.py").read_bytes()
    out = out_dir / "ollama-linux-amd64.tgz"
    sha = build_tar_gz({"bin/ollama": (script, 0o755)}, out)
    out.with_name(out.name + ".sha256").write_text(f"{sha}  {out.name}\n")
    return out, sha


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
    tgz, sha = build_ollama_tarball(art / rel)
    manifest["ollama"] = {"version": version, "url": f"{base_url}/{rel}/{tgz.name}", "sha256": sha}

    apt = art / "apt"
    if apt.exists():
        shutil.rmtree(apt)
    for src in sorted((STANDINS / "debs").iterdir()):
        if (src / "DEBIAN" / "control").exists():
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
    pyindex.mirror(gateway_requirements(), root / "cache" / "wheels", pypi / "packages")
    pyindex.build_index(pypi)
    manifest["pip"] = {"index_url": f"{base_url}/pypi/simple/"}

    (art / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
