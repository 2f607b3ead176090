"""Unpack release tarballs (the way Ollama, k3s and friends ship) into place atomically."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import File


def extract_command(src: str, dest: str) -> str:
    """tar for one archive, its compression named from its file name (zstd needs the zstd tool).

    zstd is named explicitly: a tar that cannot detect it would fail or, worse, say
    nothing (ollama/ollama#17928).
    """
    if src.endswith((".tar.zst", ".tzst")):
        flag = "--zstd"
    elif src.endswith((".tgz", ".tar.gz")):
        flag = "--gzip"
    elif src.endswith((".tar.xz", ".txz")):
        flag = "--xz"
    else:
        raise ValueError(f"{src}: not a .tar.zst, .tgz or .tar.xz archive")
    return f"tar {flag} --no-same-owner -xf {shlex.quote(src)} -C {shlex.quote(dest)}"


@operation()
def unpacked(srcs: list[str], dest: str, creates: str):
    """
    Unpack tarballs on the host, in order, into ``dest``, once and atomically: they
    go into ``dest.partial`` first, which is renamed to ``dest`` only when every one
    is unpacked, so an interrupted run leaves no half install behind (the next run
    starts the temporary folder afresh).

    + srcs: the archives' paths on the host (e.g. from ``files.download`` with a sha256);
      later ones unpack over earlier ones (a GPU add-on over the main archive)
    + dest: the directory to create; use one per version
    + creates: a file the archives contain; if it exists the operation does nothing

    pyinfra's ``files.unarchive`` unpacks into an existing folder, in place, one
    archive at a time: it cannot make the install appear all at once.

    **Example:**

    .. code:: python

        archive.unpacked(
            name="Unpack Ollama",
            srcs=["/var/cache/hearth/ollama-0.14.0-0123456789ab.tar.zst"],
            dest="/opt/ollama/0.14.0-0123456789ab",
            creates="/opt/ollama/0.14.0-0123456789ab/bin/ollama",
        )
    """
    if host.get_fact(File, path=creates):
        host.noop(f"{creates} already unpacked")
        return
    partial = f"{dest}.partial"
    qpartial, qdest = shlex.quote(partial), shlex.quote(dest)
    yield StringCommand(f"rm -rf {qpartial} && mkdir -p {qpartial}")
    for src in srcs:
        yield StringCommand(extract_command(src, partial))
    yield StringCommand(f"test -e {shlex.quote(partial + creates[len(dest):])}")
    yield StringCommand(f"rm -rf {qdest} && mv {qpartial} {qdest}")
