"""hearth.connection: Nagle off on pyinfra's SSH socket, now and at every reconnect."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from pyinfra.api import Config, Inventory, State

from hearth.connection import NoDelayOnConnect, disable_nagle, send_without_delay, tcp_socket_of


@contextmanager
def tcp_pair() -> Iterator[socket.socket]:
    """A connected loopback TCP socket (the client end), Nagle on as the kernel gives it."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        yield client
    finally:
        for s in (client, peer, server):
            s.close()


def ssh_host(sock: object) -> SimpleNamespace:
    """A stand-in for a pyinfra Host whose SSH connector's paramiko transport sits on ``sock``."""
    transport = SimpleNamespace(sock=sock)
    client = SimpleNamespace(get_transport=lambda: transport)
    return SimpleNamespace(connector=SimpleNamespace(client=client))


def nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_disable_nagle_sets_tcp_nodelay_on_the_ssh_socket() -> None:
    with tcp_pair() as sock:
        assert nodelay(sock) == 0
        assert disable_nagle(ssh_host(sock)) is True
        assert nodelay(sock) == 1


def test_a_connection_without_a_tcp_socket_is_left_alone() -> None:
    a, b = socket.socketpair()  # a unix socket: a ProxyCommand-like transport
    try:
        assert tcp_socket_of(ssh_host(a)) is None
        assert disable_nagle(ssh_host(a)) is False
    finally:
        a.close()
        b.close()
    assert disable_nagle(SimpleNamespace(connector=SimpleNamespace())) is False  # @local, @docker
    assert disable_nagle(ssh_host(None)) is False  # not connected yet


def test_the_reconnect_callback_is_registered_once_and_applies_on_connect() -> None:
    state = State()
    state.init(Inventory((["box"], {})), Config())
    with tcp_pair() as first, tcp_pair() as second:
        send_without_delay(state, ssh_host(first))
        send_without_delay(state, ssh_host(first))
        handlers = [h for h in state.callback_handlers if isinstance(h, NoDelayOnConnect)]
        assert len(handlers) == 1
        assert nodelay(first) == 1
        # pyinfra reconnects (after a reboot): its host_connect callback turns Nagle off again
        state.trigger_callbacks("host_connect", ssh_host(second))
        assert nodelay(second) == 1
