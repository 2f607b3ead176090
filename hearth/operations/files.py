"""Put a file only if a validator accepts it (sudoers, sshd, nftables, secrets...).

With sudo, pyinfra's SSH connector uploads as the login user to a temporary file
(``/tmp/pyinfra-<sha1>`` by default, created under the login umask: world-readable)
and then copies it into place with sudo. :func:`validated_put` stages every upload in
:data:`STAGING` instead: a 0700 directory owned by the login user under ``/run``
(tmpfs, root-owned, so no other user can create it first), and creates the
candidate file 0600 before its content arrives.
"""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.api.util import try_int
from pyinfra.facts.files import File, FileContents, Sha1File
from pyinfra.operations.util.files import generate_color_diff

from hearth.operations.config_files import already_in_place

STAGING = "/run/hearth-upload"


def _mode_int(mode: str) -> int:
    return int(try_int(mode.lstrip("0") or "0"))


def login_user() -> str:
    """The SSH login user: the one whose SFTP session writes the staged upload."""
    return str(host.data.get("ssh_user") or "root")


def staged_upload(content: str, dest: str) -> list:
    """Commands that put ``content`` at ``dest`` (created 0600 first) through :data:`STAGING`."""
    staged = f"{STAGING}/{hashlib.sha1(dest.encode()).hexdigest()}"
    return [
        StringCommand("install", "-d", "-m", "0700", "-o", shlex.quote(login_user()), STAGING),
        StringCommand("install", "-m", "0600", "/dev/null", shlex.quote(dest)),
        FileUploadCommand(StringIO(content), dest, remote_temp_filename=staged),
    ]


def show_diff(dest: str, content: str, exists: bool, secret: bool) -> None:
    """Under ``pyinfra --diff``: the change as files.put shows it; a secret's content never."""
    if not host.state.config.DIFF:
        return
    host.log(f"Will {'modify' if exists else 'create'} {dest}", logger.info)
    if secret:
        logger.info("  (secret: content not shown)")
        return
    current = host.get_fact(FileContents, path=dest) if exists else None
    current_lines = [line + "\n" for line in current or []]
    for line in generate_color_diff(current_lines, content.splitlines(keepends=True)):
        logger.info("  %s", line)
    logger.info("")


@operation()
def validated_put(
    content: str,
    dest: str,
    validate: str,
    mode: str = "0644",
    user: str = "root",
    group: str = "root",
    in_place: bool = False,
    secret: bool = False,
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
    + secret: the content is a secret: ``pyinfra --diff`` says the file changes, never how

    The upload is staged privately (see the module's docstring), never in a
    world-readable temporary file. No change when the host already has exactly
    this content, mode and owner.

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
    wanted = hashlib.sha1(content.encode()).hexdigest()
    if already_in_place(dest, wanted, mode, user, group):
        return
    remote = host.get_fact(File, path=dest)
    quoted = shlex.quote(dest)
    if remote and host.get_fact(Sha1File, path=dest) == wanted:
        if remote["mode"] != _mode_int(mode):
            yield StringCommand("chmod", mode, quoted)
        if (remote["user"], remote["group"]) != (user, group):
            yield StringCommand("chown", f"{user}:{group}", quoted)
        return

    show_diff(dest, content, bool(remote), secret)
    candidate = f"{dest}.hearth-new"
    qcand = shlex.quote(candidate)
    yield from staged_upload(content, candidate)
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
