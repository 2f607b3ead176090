"""Lines of an OpenSSH authorized_keys file on a Windows host, by the key's comment."""

from __future__ import annotations

from gevent.lock import BoundedSemaphore
from pyinfra import host, state
from pyinfra.api import OperationError, operation

from hearth import powershell as ps
from hearth.facts.windows import TextLines
from hearth.operations.windows import run
from hearth.operations.windows.files import ADMIN_ONLY_ACL, write_lines


def _comment(line: str) -> str:
    """The comment of an authorized_keys line (after the key), or ''."""
    fields = line.split()
    for i, field in enumerate(fields):
        if field.startswith(("ssh-", "ecdsa-", "sk-")) and i + 1 < len(fields):
            return " ".join(fields[i + 2:])
    return ""


@operation()
def key_line(path: str, marker: str, line: str | None = None, admin_only: bool = True):
    """
    Keep exactly one line whose key comment starts with ``marker`` in the
    authorized_keys file ``path``: ``line``, or (``line`` None) none. Every other
    line stays as it is. Nothing is sent when the file already says so.

    + admin_only: only SYSTEM and Administrators may read the file (sshd requires this
      of ``administrators_authorized_keys``; the bootstrap set the same ACL)

    **Example:**

    .. code:: python

        ssh_keys.key_line(name="Gateway tunnel key",
                          path=r"C:\\ProgramData\\ssh\\administrators_authorized_keys",
                          marker="hearth-tunnel",
                          line='restrict,port-forwarding,permitopen="127.0.0.1:11434" ssh-ed25519 AAAA... '
                               'hearth-tunnel@gateway')
    """
    current = host.get_fact(TextLines, path=path)
    if current is None and line is None:
        host.noop(f"{path} does not exist: no {marker} key to remove")
        return
    kept = [existing for existing in (current or []) if not _comment(existing).startswith(marker)]
    wanted = kept + ([line] if line is not None else [])
    if wanted == (current or []):
        host.noop(f"{path}: {marker} key {'present' if line else 'absent'}")
        return
    lines = write_lines(path, "".join(f"{entry}\n" for entry in wanted))
    if admin_only:
        lines.append(ps.native(ADMIN_ONLY_ACL.format(path=ps.quote(path)) + " | Out-Null"))
    yield run(*lines)


_lock = BoundedSemaphore()
_cache: dict[tuple[bool, str], str | None] = {}


def _gateway_key(gateway: str, path: str) -> str | None:
    """The gateway host's tunnel public key (read once per phase, one reader at a time)."""
    from pyinfra.facts.files import FileContents

    slot = (bool(state.is_executing), gateway)
    with _lock:
        if slot not in _cache or not state.is_executing:
            peer = next((h for h in state.inventory if h.data.get("hearth_host", h.name) == gateway), None)
            if peer is None:
                raise OperationError(f"the gateway host {gateway} is not in the pyinfra inventory")
            lines = peer.get_fact(FileContents, path=path)
            _cache[slot] = next((x.strip() for x in lines or [] if x.strip()), None)
        return _cache[slot]


@operation()
def tunnel_key(inventory: str, host_name: str, path: str):
    """
    The gateway's SSH tunnel key on this box (``windows.reach: ssh_tunnel``), allowed
    to forward to the box's serve ports on its loopback and nothing else; removed when
    the box is not reached that way. The gateway host's public key is read from it
    when this runs (its key pair is made earlier in the deploy: roles/gateway/tunnels.py).

    **Example:**

    .. code:: python

        ssh_keys.tunnel_key(name="Gateway tunnel key", inventory=host.data.hearth_inventory,
                            host_name=host.data.hearth_host,
                            path=r"C:\\ProgramData\\ssh\\administrators_authorized_keys")
    """
    from hearth.configs import tunnel
    from hearth.inventory import load_cached

    inv = load_cached(inventory)
    line = None
    if host_name in tunnel.tunnel_hosts(inv):
        assert inv.gateway is not None
        public = _gateway_key(inv.gateway.host, f"{tunnel.KEY}.pub")
        if public is None:
            if state.is_executing:
                raise OperationError(f"no tunnel key on the gateway host {inv.gateway.host} ({tunnel.KEY}.pub)")
            public = "ssh-ed25519 <made-on-the-gateway-host-at-deploy>"
        line = tunnel.authorized_key_line(inv, host_name, public)
    yield from key_line._inner(path=path, marker=tunnel.MARKER, line=line)
