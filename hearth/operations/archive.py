"""Unpack release tarballs (the way Ollama, k3s and friends ship)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.facts.files import File


@operation()
def unpacked(src: str, dest: str, creates: str):
    """
    Unpack a tarball (gzip, xz or zstd: GNU tar detects it) on the host into ``dest``, once.

    + src: the tarball's path on the host (e.g. from ``files.download`` with a sha256)
    + dest: the directory to unpack into (created if missing); use one per version
    + creates: a file the tarball contains; if it exists the operation does nothing

    **Example:**

    .. code:: python

        archive.unpacked(
            name="Unpack Ollama",
            src="/var/cache/hearth/ollama-0.12.6-amd64.tgz",
            dest="/opt/ollama/0.12.6",
            creates="/opt/ollama/0.12.6/bin/ollama",
        )
    """
    if host.get_fact(File, path=creates):
        host.noop(f"{creates} already unpacked")
        return
    yield StringCommand("mkdir", "-p", QuoteString(dest))
    yield StringCommand("tar", "-xf", QuoteString(src), "-C", QuoteString(dest))
