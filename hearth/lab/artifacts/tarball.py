"""Deterministic .tar.gz: sorted entries, fixed mtimes and owners, gzip mtime 0.

The same inputs always give the same bytes, so a published sha256 stays valid.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

FIXED_MTIME = 1_700_000_000  # 2023-11-14; any constant works


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_tar_gz(entries: dict[str, tuple[bytes, int]], out: Path) -> str:
    """Write ``out`` from ``{arcname: (content, mode)}`` (parent dirs implied); return sha256."""
    dirs: set[str] = set()
    for name in entries:
        parts = name.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(dirs | set(entries)):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
            if name in entries:
                content, mode = entries[name]
                info.size, info.mode = len(content), mode
                tar.addfile(info, io.BytesIO(content))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return sha256_file(out)
