"""SSH on the hosts: sshd changes that cannot lock the deploy out (keep the previous
drop-in, prove a fresh login after the reload, put the previous drop-in back when it
fails), and key pairs made on the host that uses them (the gateway host's tunnel key)."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import time
from pathlib import Path

from pyinfra import host, state
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import File, Sha1File

PREVIOUS = ".hearth-prev"
RELOAD = "systemctl try-reload-or-restart ssh.service"


def _ssh_argv(command: str = "true") -> list[str]:
    """A new ssh login to this host from the deploying machine, as pyinfra logs in:
    the same user, port, key and known_hosts, strict host keys, no shared connection."""
    data = host.data
    user = data.get("ssh_user")
    target = f"{user}@{data.get('ssh_hostname') or host.name}" if user else (data.get("ssh_hostname") or host.name)
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ControlMaster=no",
            "-o", "ControlPath=none", "-o", "StrictHostKeyChecking=yes"]  # fmt: skip
    if data.get("ssh_port"):
        argv += ["-p", str(data.get("ssh_port"))]
    if data.get("ssh_key"):
        argv += ["-o", "IdentitiesOnly=yes", "-i", str(Path(data.get("ssh_key")).expanduser())]
    if data.get("ssh_known_hosts_file"):
        argv += ["-o", f"UserKnownHostsFile={Path(data.get('ssh_known_hosts_file')).expanduser()}"]
    return [*argv, target, command]


def fresh_login_error(wait: float = 20.0) -> str | None:
    """None when a brand-new SSH login to the current host works, else why not.

    sshd re-executes itself on reload and reopens its listening socket, so a login
    right after it may be refused for a moment: connection errors are retried for
    ``wait`` seconds; a refused authentication is final at once."""
    argv = _ssh_argv()
    deadline = time.monotonic() + wait
    while True:
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            said, final = str(exc), False
        else:
            if run.returncode == 0:
                return None
            said = " ".join(run.stderr.strip().splitlines()[-2:]) or f"exit {run.returncode}"
            final = "Permission denied" in said or "Host key verification failed" in said
        if final or time.monotonic() >= deadline:
            return f"{argv[-2]}: {said}"
        time.sleep(0.5)


@operation()
def keep_previous(path: str, content: str):
    """
    Copy ``path`` aside (``<path>.hearth-prev``) when it is about to be replaced
    by ``content``, so :func:`login_proved` can put it back. No change when the
    file already holds ``content``.

    **Example:**

    .. code:: python

        ssh.keep_previous(name="Keep the previous drop-in", path=SSHD_DROPIN, content=text)
    """
    if host.get_fact(Sha1File, path=path) == hashlib.sha1(content.encode()).hexdigest():
        host.noop(f"{path} is unchanged")
        return
    quoted, prev = shlex.quote(path), shlex.quote(path + PREVIOUS)
    yield StringCommand(f"if [ -e {quoted} ]; then cp -p {quoted} {prev}; else rm -f {prev}; fi")


@operation()
def login_proved(path: str):
    """
    After sshd was reloaded with a new ``path``: open a NEW ssh connection from the
    deploying machine, exactly as the deploy logs in (user, port, key,
    known_hosts; no connection sharing). When it fails, the previous file
    (``<path>.hearth-prev``, from :func:`keep_previous`; none = remove it) is put
    back, sshd reloaded, and the host fails with what ssh said. The running
    session is not the proof: sshd keeps it whatever the new config says.

    Run it with ``_if`` on the step that changed the file; it changes nothing on
    success (the kept copy is removed).

    **Example:**

    .. code:: python

        ssh.login_proved(name="A new SSH login works", path=SSHD_DROPIN, _if=dropin.did_change)
    """
    quoted, prev = shlex.quote(path), shlex.quote(path + PREVIOUS)
    if not state.is_executing:
        host.noop("a new SSH login is tried after the reload")
        return
    error = fresh_login_error()
    if error is None:
        yield StringCommand(f"rm -f {prev}")
        return
    message = shlex.quote(f"hearth: a new SSH login fails after the sshd change ({error}); "
                          f"the previous {path} is back and sshd reloaded")
    yield StringCommand(
        f"if [ -e {prev} ]; then mv -f {prev} {quoted}; else rm -f {quoted}; fi; {RELOAD}; "
        f"echo {message} >&2; exit 1"
    )


def dropin(name: str, content: str, dest: str, mode: str = "0644") -> None:
    """
    An sshd drop-in that cannot lock the deploy out: the previous file is kept,
    the new one is checked by ``sshd -t`` in place, sshd reloads, and a NEW login
    from the deploying machine must succeed, else the previous file comes back.
    Changes nothing when the file is already ``content``.

    **Example:**

    .. code:: python

        ssh.dropin("sshd hardening", content=text, dest="/etc/ssh/sshd_config.d/10-hearth.conf")
    """
    from pyinfra.operations import server

    from hearth.operations.files import validated_put

    keep_previous(name=f"{name}: keep the previous file (for a rollback)", path=dest, content=content)
    changed = validated_put(name=f"{name} (sshd -t)", content=content, dest=dest, validate="sshd -t", mode=mode,
                            in_place=True)
    server.shell(name="Reload sshd", commands=[RELOAD], _if=changed.did_change)
    login_proved(name="A new SSH login works after the sshd change (else rolled back)", path=dest,
                 _if=changed.did_change)


@operation()
def keypair(path: str, user: str, comment: str):
    """
    Make an ed25519 key pair at ``path`` (``path.pub`` beside it) for ``user``, once.

    The private key is made on the host by ``ssh-keygen`` (no passphrase: a service
    uses it), owned by ``user``, mode 0600; it is never printed and never leaves the
    host. Other hosts read the public half (``path.pub``). A key pair already there
    is kept (no change).

    **Example:**

    .. code:: python

        ssh.keypair(name="Tunnel key pair", path="/var/lib/hearth-tunnel/id_ed25519",
                    user="hearth-tunnel", comment="hearth-tunnel@gateway")
    """
    if host.get_fact(File, path=path) and host.get_fact(File, path=f"{path}.pub"):
        host.noop(f"{path} already has a key pair")
        return
    key, new = shlex.quote(path), shlex.quote(f"{path}.new")
    yield StringCommand(
        f"rm -f {new} {new}.pub && (umask 077 && ssh-keygen -q -t ed25519 -N '' -C {shlex.quote(comment)} -f {new})"
        f" && chown {shlex.quote(user)}: {new} {new}.pub && chmod 0600 {new} && chmod 0644 {new}.pub"
        f" && mv -f {new}.pub {key}.pub && mv -f {new} {key}"
    )
