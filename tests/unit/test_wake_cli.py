"""`hearth wake` waits until a deploy can log in, not only until the SSH port answers.

The ``ssh`` these tests run is a stand-in script on PATH (``STANDIN_SSH``) that answers
as OpenSSH does in each case; no packet leaves this machine (the magic packet is
recorded, not sent, and every address is loopback).
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth import wake
from hearth.inventory import Inventory, load_inventory
from hearth.plan_facts import ssh_argv

EXAMPLE = Path("inventory/example.yml")

# Fails as OpenSSH does while /run/nologin exists, N times (a counter file), then logs in.
STANDIN_SSH = """#!/bin/sh
echo "$@" >> "{calls}"
n=$(wc -l < "{calls}")
if [ "$n" -le {refusals} ]; then
  echo "{said}" >&2
  exit 255
fi
exit 0
"""
NOLOGIN = "System is booting up. Unprivileged users are not permitted to log in yet."
CHANGED = "Host key verification failed."


def standin_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusals: int, said: str = NOLOGIN) -> Path:
    """Put the stand-in ``ssh`` first on PATH; return the file its calls are logged to."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text(STANDIN_SSH.format(calls=calls, refusals=refusals, said=said))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    calls.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on loopback that accepts (the host's sshd, as far as the port goes)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def on_loopback(port: int) -> tuple[Inventory, str]:
    """The example inventory with its first Linux host moved to loopback:``port``, with a MAC."""
    inv = load_inventory(EXAMPLE)
    name = next(n for n, h in inv.hosts.items() if h.os == "linux")
    moved = {"address": "127.0.0.1", "ssh_port": port, "mac": "52:54:00:00:00:01"}
    hosts = {**inv.hosts, name: inv.hosts[name].model_copy(update=moved)}
    return inv.model_copy(update={"hosts": hosts}), name


def test_the_login_is_the_deploys_own_with_strict_host_keys() -> None:
    inv = load_inventory(EXAMPLE)
    name = next(n for n, h in inv.hosts.items() if h.os == "linux")
    argv = ssh_argv(inv, name, "true")  # what login_works runs
    assert argv[0] == "ssh" and argv[-2:] == [f"{inv.ssh.user}@{inv.hosts[name].address}", "true"]
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv


def test_a_windows_host_is_ready_when_its_port_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = standin_ssh(tmp_path, monkeypatch, refusals=99)
    inv = load_inventory(EXAMPLE)
    name = next(n for n, h in inv.hosts.items() if h.os == "windows")
    assert wake.login_works(inv, name) and calls.read_text() == ""


def test_a_host_still_booting_is_waited_for_until_the_login_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int,
) -> None:
    calls = standin_ssh(tmp_path, monkeypatch, refusals=2)
    sent: list[str] = []
    monkeypatch.setattr(wake.wakeonlan, "send_magic_packet", lambda mac, **kw: sent.append(mac))
    inv, name = on_loopback(listener)
    got, seconds = wake.wake_host(inv, name, deadline_s=30)
    assert got == name and seconds is not None and seconds > 0, "not ready on the port's first answer"
    assert len(calls.read_text().splitlines()) == 3 and sent == [inv.hosts[name].mac]


def test_an_awake_host_that_logs_in_gets_no_packet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int,
) -> None:
    standin_ssh(tmp_path, monkeypatch, refusals=0)
    sent: list[str] = []
    monkeypatch.setattr(wake.wakeonlan, "send_magic_packet", lambda mac, **kw: sent.append(mac))
    inv, name = on_loopback(listener)
    assert wake.wake_host(inv, name, deadline_s=5) == (name, 0.0) and sent == []


def test_a_changed_host_key_is_an_error_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int,
) -> None:
    calls = standin_ssh(tmp_path, monkeypatch, refusals=99, said=CHANGED)
    inv, name = on_loopback(listener)
    with pytest.raises(wake.HostKeyMismatch, match="Host key verification failed"):
        wake.wake_host(inv, name, deadline_s=30)
    assert len(calls.read_text().splitlines()) == 1, "never retried"
