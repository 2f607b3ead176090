"""Deterministic .tar.gz and .tar.zst: sorted entries, fixed mtimes and owners, gzip mtime 0.

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


def tar_bytes(entries: dict[str, tuple[bytes, int]]) -> bytes:
    """An uncompressed tar of ``{arcname: (content, mode)}`` (parent dirs implied), deterministic."""
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
    return raw.getvalue()


def build_tar_gz(entries: dict[str, tuple[bytes, int]], out: Path) -> str:
    """Write ``out`` from ``{arcname: (content, mode)}`` (parent dirs implied); return sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(tar_bytes(entries))
    return sha256_file(out)


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_MAX_BLOCK = 128 * 1024


def zstd_frame_raw(data: bytes) -> bytes:
    """``data`` as one zstd frame of raw (stored, uncompressed) blocks: RFC 8878 §3.1.1.

    Byte-for-byte the same on every machine and zstd version (unlike a compressor's
    output), so the sha256 in inventory/lab.yml stays valid; `zstd -d` reads it.
    """
    # Frame header descriptor: 8-byte content size (flag 3), single segment, no checksum, no dictionary.
    out = bytearray(ZSTD_MAGIC + bytes([0b1110_0000]) + len(data).to_bytes(8, "little"))
    blocks = [data[i:i + ZSTD_MAX_BLOCK] for i in range(0, len(data), ZSTD_MAX_BLOCK)] or [b""]
    for n, block in enumerate(blocks):
        last = 1 if n == len(blocks) - 1 else 0
        header = last | (0 << 1) | (len(block) << 3)  # block type 0: raw
        out += header.to_bytes(3, "little") + block
    return bytes(out)


def build_tar_zst(entries: dict[str, tuple[bytes, int]], out: Path) -> str:
    """Like :func:`build_tar_gz`, zstd-framed (the shape of Ollama's releases from 0.14.0 on)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(zstd_frame_raw(tar_bytes(entries)))
    return sha256_file(out)
