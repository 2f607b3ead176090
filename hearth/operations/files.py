"""Put a file only if a validator accepts it (sudoers, sshd, nftables...)."""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.api.util import try_int
from pyinfra.facts.files import File, Sha1File


def _mode_int(mode: str) -> int:
    return int(try_int(mode.lstrip("0") or "0"))


@operation()
def validated_put(
    content: str,
    dest: str,
    validate: str,
    mode: str = "0644",
    user: str = "root",
    group: str = "root",
    in_place: bool = False,
):
    """
    Write ``content`` to ``dest`` only if ``validate`` accepts it; otherwise leave
    the old file untouched and fail.

    + content: the file's text
    + dest: the path on the host
    + validate: shell command; ``{path}`` is replaced by the (quoted) candidate path
    + mode, user, group: the file's mode and owner
    + in_place: the validator reads the live path (e.g. ``sshd -t`` reading every
      drop-in): move the candidate into place, validate, restore the old file on failure

    No change when the host already has exactly this content, mode and owner.

    **Example:**

    .. code:: python

        files.validated_put(
            name="Sudoers drop-in",
            content="hearth ALL=(ALL:ALL) NOPASSWD: ALL\\n",
            dest="/etc/sudoers.d/hearth",
            validate="visudo -cf {path}",
            mode="0440",
        )
    """
    remote = host.get_fact(File, path=dest)
    wanted = hashlib.sha1(content.encode()).hexdigest()
    quoted = shlex.quote(dest)
    if remote and host.get_fact(Sha1File, path=dest) == wanted:
        if remote["mode"] != _mode_int(mode):
            yield StringCommand("chmod", mode, quoted)
        if (remote["user"], remote["group"]) != (user, group):
            yield StringCommand("chown", f"{user}:{group}", quoted)
        return

    candidate = f"{dest}.hearth-new"
    qcand = shlex.quote(candidate)
    yield FileUploadCommand(StringIO(content), candidate, remote_temp_filename=host.get_temp_filename(candidate))
    yield StringCommand("chown", f"{user}:{group}", qcand)
    yield StringCommand("chmod", mode, qcand)
    if not in_place:
        check = validate.format(path=qcand)
        yield StringCommand(
            f"if {check}; then mv -f {qcand} {quoted}; "
            f"else rm -f {qcand}; echo 'hearth: {dest} rejected by: {validate}' >&2; exit 1; fi"
        )
        return
    backup = shlex.quote(f"{dest}.hearth-old")
    check = validate.format(path=quoted)
    yield StringCommand(
        f"if [ -e {quoted} ]; then cp -p {quoted} {backup}; fi; mv -f {qcand} {quoted}; "
        f"if {check}; then rm -f {backup}; "
        f"else if [ -e {backup} ]; then mv -f {backup} {quoted}; else rm -f {quoted}; fi; "
        f"echo 'hearth: {dest} rejected by: {validate}; the previous file is back' >&2; exit 1; fi"
    )
