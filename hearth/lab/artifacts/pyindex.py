"""A PEP 503 "simple" package index over a directory of wheels/sdists.

Layout: ``packages/<file>`` and ``simple/index.html``, ``simple/<project>/index.html``
with ``<a href="../../packages/<file>#sha256=<hex>">`` links, which pip verifies.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from hearth.lab.artifacts.tarball import sha256_file

_ZIP_DATE = (2023, 11, 14, 0, 0, 0)


def normalize(name: str) -> str:
    """PEP 503 project-name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str:
    """The project name a distribution file belongs to (wheel or sdist)."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-")[0])
    stem = re.sub(r"\.(tar\.gz|zip)$", "", filename)
    return normalize(stem.rsplit("-", 1)[0])


def build_index(root: Path) -> dict[str, list[str]]:
    """(Re)write ``root/simple`` for the files in ``root/packages``; project -> files."""
    files = sorted(p for p in (root / "packages").iterdir() if p.is_file())
    projects: dict[str, list[Path]] = {}
    for f in files:
        projects.setdefault(project_of(f.name), []).append(f)
    simple = root / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
    (simple / "index.html").write_text(_page("Simple index", links))
    for project, pfiles in projects.items():
        body = "".join(
            f'<a href="../../packages/{html.escape(f.name)}#sha256={sha256_file(f)}">'
            f"{html.escape(f.name)}</a>\n"
            for f in pfiles
        )
        (simple / project).mkdir(exist_ok=True)
        (simple / project / "index.html").write_text(_page(f"Links for {project}", body))
    return {p: [f.name for f in fs] for p, fs in projects.items()}


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
        f"<title>{title}</title></head><body>\n{body}</body></html>\n"
    )


def build_wheel(out_dir: Path, name: str, version: str, modules: dict[str, str]) -> Path:
    """A pure-Python wheel (deterministic bytes) with ``modules`` {path: source}."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = dict(modules)
    files[f"{dist}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        "Summary: hearth lab stand-in package\n"
    )
    files[f"{dist}.dist-info/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: hearth-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for path, text in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    out = out_dir / f"{dist}-py3-none-any.whl"
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in sorted(files.items()):
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
    return out


def mirror(requirements: list[str], cache: Path, out_dir: Path) -> list[Path]:
    """Download ``requirements`` (and what they depend on) from PyPI into ``cache``
    once, and copy the files into ``out_dir`` for the index.

    The lab machines run Debian 12's Python 3.11 on the same architecture as this
    machine, so the wheels pip picks here install there. Real packages, unchanged:
    the lab only relays them, as a local mirror would.
    """
    cache.mkdir(parents=True, exist_ok=True)
    stamp = cache / ".requirements"
    wanted = "\n".join(sorted(requirements)) + "\n"
    if not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-qq", "--only-binary=:all:",
             "--dest", str(cache), *requirements],
            check=True,
        )
        stamp.write_text(wanted)
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for wheel in sorted(cache.glob("*.whl")):
        shutil.copy2(wheel, out_dir / wheel.name)
        copied.append(out_dir / wheel.name)
    return copied
