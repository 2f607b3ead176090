"""pyinfra's SSH connections without Nagle's algorithm: one command, one round trip.

paramiko sets no socket options, so Nagle's algorithm is on for pyinfra's SSH
connections. Every fact and every command pyinfra runs opens a channel and sends
its exec request as separate small packets; the second waits behind the host's
delayed ACK, about 40 ms each time. A no-op deploy is about 200 such commands per
host, one after another: 48 ms per command with Nagle, 2-7 ms without (measured
on the lab, `docs/lab.md`). OpenSSH's own client turns Nagle off for the same
reason on interactive sessions.

deploy.py calls :func:`send_without_delay` first thing on every host: it sets
``TCP_NODELAY`` on the host's connection and registers (once) a callback that sets
it again whenever pyinfra reconnects, e.g. after a reboot the deploy waited for.
A connection that is not a TCP socket (a ProxyJump channel, a local or Docker
connector) is left as it is.
"""

from __future__ import annotations

import socket
from typing import Any

from pyinfra.api.host import Host
from pyinfra.api.state import BaseStateCallback, State


def tcp_socket_of(host: Host) -> socket.socket | None:
    """The TCP socket under ``host``'s SSH connection, or None (another connector, a proxy channel)."""
    client = getattr(host.connector, "client", None)
    transport = client.get_transport() if client is not None else None
    sock: Any = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        return sock
    return None


def disable_nagle(host: Host) -> bool:
    """Set ``TCP_NODELAY`` on ``host``'s SSH connection; whether there was one to set it on.

    Example:

    .. code:: python

        disable_nagle(host)  # every later command on host: no delayed-ACK stall
    """
    sock = tcp_socket_of(host)
    if sock is None:
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


class NoDelayOnConnect(BaseStateCallback):
    """Turns Nagle off on every connection pyinfra (re)opens in this run."""

    @staticmethod
    def host_connect(state: State, host: Host) -> None:
        disable_nagle(host)


def send_without_delay(state: State, host: Host) -> None:
    """Nagle off on ``host``'s connection now and on every reconnect of this run (registered once).

    Example (deploy.py, before any role):

    .. code:: python

        from pyinfra import host, state
        send_without_delay(state, host)
    """
    if not any(isinstance(h, NoDelayOnConnect) for h in state.callback_handlers):
        state.add_callback_handler(NoDelayOnConnect())
    disable_nagle(host)
