"""SSH key pairs made on the host that uses them (the gateway host's tunnel key)."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import File


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
