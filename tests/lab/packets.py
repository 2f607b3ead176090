"""Real packets for the lab's firewall checks: TCP connects from this machine or from a lab
machine (optionally inside a network namespace there), and throwaway listeners.

A listener is ``python3 -m http.server`` run by ``systemd-run --collect`` (even one that
failed leaves no failed unit behind: test_machines counts those), so a check can open a
port no role opens, or a role's port on a host where its service does not run.

Example::

    units: list[str] = []
    try:
        listen(node, 18999, units)
        assert not tcp_open_from(peer, overlay_ip, 18999)
    finally:
        stop(node, units)
"""

from __future__ import annotations

from typing import Any

from hearth.status import tcp_open

LISTENER = "hearth-test-listener"


def tcp_open_from_here(address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether a TCP connect from this machine (an address on the lab's LAN, not the overlay) succeeds."""
    return tcp_open(address, port, timeout)


def tcp_open_from(node: Any, address: str, port: int, netns: str | None = None, timeout: float = 3.0) -> bool:
    """Whether a TCP connect from lab machine ``node`` (inside ``netns`` there, if given) succeeds."""
    script = f"import socket; socket.create_connection(('{address}', {port}), timeout={timeout:g})"
    prefix = f"sudo ip netns exec {netns} " if netns else ""
    return node.run(f"{prefix}python3 -c \"{script}\"").rc == 0


def _ss(netns: str | None) -> str:
    return f"sudo ip netns exec {netns} ss -Hltn" if netns else "ss -Hltn"


def wait_listening(node: Any, port: int, seconds: float, netns: str | None = None) -> bool:
    """Whether something listens on TCP ``port`` (in ``netns``) within ``seconds``, polled every 0.2 s."""
    tries = max(1, int(seconds / 0.2))
    poll = f"for i in $(seq {tries}); do {_ss(netns)} 'sport = :{port}' | grep -q . && exit 0; sleep 0.2; done; exit 1"
    return node.run(poll).rc == 0


def listen(node: Any, port: int, units: list[str], netns: str | None = None, within: float = 10.0) -> None:
    """Make sure something listens on TCP ``port`` (in ``netns``), on every address, within ``within`` s.

    Nothing is started when something listens already, on any address: a role's service
    bound to the overlay address holds the port, and a second bind to 0.0.0.0 would fail.
    A started listener's unit is appended to ``units``, for :func:`stop`.
    """
    if node.run(f"{_ss(netns)} 'sport = :{port}' | grep -q .").rc != 0:
        unit = f"{LISTENER}-{netns or 'host'}-{port}"
        prefix = f"ip netns exec {netns} " if netns else ""
        server = f"python3 -m http.server {port} --bind 0.0.0.0"
        node.check_output(f"sudo systemd-run --collect --unit {unit} {prefix}{server}")
        units.append(unit)
    assert wait_listening(node, port, within, netns), f"nothing listens on {port} within {within:g} s"


def stop(node: Any, units: list[str]) -> None:
    """Stop the listeners :func:`listen` started on ``node`` (a unit that is not there is fine)."""
    for unit in units:
        node.run(f"sudo systemctl stop {unit}")
