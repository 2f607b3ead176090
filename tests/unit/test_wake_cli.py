"""`hearth wake` waits until a deploy can log in, not only until the SSH port answers.

The ``ssh`` these tests run is a stand-in script on PATH (``STANDIN_SSH``) that answers
as OpenSSH does in each case; no packet leaves this machine (the magic packet is
recorded, not sent, and every address is loopback).
"""

from __future__ import annotations

import argparse
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
# What OpenSSH prints while /run/nologin exists: pam_nologin's text (sent as a banner), then the close.
NOLOGIN = ("System is booting up. Unprivileged users are not permitted to log in yet. Please come back later.\n"
           "Connection closed by 127.0.0.1 port 22")
CHANGED = ("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
           "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
           "Host key verification failed.")
BAD_KEY = "user@127.0.0.1: Permission denied (publickey)."
# pam_nologin with an operator's /etc/nologin (not the boot's /run/nologin): waiting does not lift it.
ETC_NOLOGIN = "Maintenance until Monday: logins are off (ops).\nConnection closed by 127.0.0.1 port 22"


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
    assert wake.try_login(inv, name).state == "ok" and calls.read_text() == ""


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
    with pytest.raises(wake.HostKeyMismatch, match="Host key verification failed") as refused:
        wake.wake_host(inv, name, deadline_s=30)
    assert len(calls.read_text().splitlines()) == 1, "never retried"
    said = str(refused.value)  # names the host and its address, and what to do; checking stays on
    assert name in said and f"[127.0.0.1]:{listener}" in said
    assert f"ssh-keygen -R '[127.0.0.1]:{listener}'" in said and "hearth hostkey accept" in said
    assert "StrictHostKeyChecking=no" not in said


def test_the_cli_names_the_host_whose_key_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int, capsys: pytest.CaptureFixture[str],
) -> None:
    standin_ssh(tmp_path, monkeypatch, refusals=99, said=CHANGED)
    inv, name = on_loopback(listener)
    monkeypatch.setattr(wake, "load_or_report", lambda _: inv)
    assert wake.cmd_wake(argparse.Namespace(inventory="inventory/home.yml", hosts=[name], timeout=30)) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{name} (127.0.0.1): ") and "Host key verification failed" in out
    assert f"hearth hostkey accept inventory/home.yml {name}" in out


@pytest.mark.parametrize("said", [BAD_KEY, ETC_NOLOGIN])
def test_an_awake_host_that_refuses_the_login_is_told_at_once_without_a_packet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int, capsys: pytest.CaptureFixture[str], said: str,
) -> None:
    calls = standin_ssh(tmp_path, monkeypatch, refusals=99, said=said)
    sent: list[str] = []
    monkeypatch.setattr(wake.wakeonlan, "send_magic_packet", lambda mac, **kw: sent.append(mac))
    inv, name = on_loopback(listener)
    monkeypatch.setattr(wake, "load_or_report", lambda _: inv)
    assert wake.cmd_wake(argparse.Namespace(inventory="inventory/home.yml", hosts=[name], timeout=60)) == 1
    out = capsys.readouterr().out
    assert sent == [] and len(calls.read_text().splitlines()) == 1, "no packet, no wait"
    assert out.startswith(f"{name} (127.0.0.1") and "awake" in out and "refuses the login" in out
    assert said.splitlines()[0] in out, "what ssh said"


def test_a_host_refusing_the_login_after_the_packet_is_not_waited_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int,
) -> None:
    """Asleep when asked (port shut), then up and refusing the key: an error, long before the deadline."""
    calls = standin_ssh(tmp_path, monkeypatch, refusals=99, said=BAD_KEY)
    inv, name = on_loopback(listener)
    answers = iter([False, True])
    monkeypatch.setattr(wake, "ssh_answers", lambda *a, **kw: next(answers, True))
    monkeypatch.setattr(wake.wakeonlan, "send_magic_packet", lambda mac, **kw: None)
    with pytest.raises(wake.LoginRefused, match="Permission denied"):
        wake.wake_host(inv, name, deadline_s=60)
    assert len(calls.read_text().splitlines()) == 1


def test_a_host_that_never_logs_in_says_what_ssh_said_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int,
) -> None:
    standin_ssh(tmp_path, monkeypatch, refusals=999)  # booting for ever: waited out, bounded
    monkeypatch.setattr(wake.wakeonlan, "send_magic_packet", lambda mac, **kw: None)
    inv, name = on_loopback(listener)
    with pytest.raises(wake.NoLogin, match="no SSH login within 1s of the magic packet") as late:
        wake.wake_host(inv, name, deadline_s=1)
    assert "System is booting up" in str(late.value)


@pytest.mark.parametrize(("returncode", "stderr", "state"), [
    (0, "", "ok"),
    (255, NOLOGIN, "wait"),  # booting: /run/nologin
    (255, "ssh: connect to host 127.0.0.1 port 22: Connection refused", "wait"),  # sshd not up yet
    (255, "kex_exchange_identification: read: Connection reset by peer\n"
          "Connection reset by 127.0.0.1 port 22", "wait"),
    (255, "kex_exchange_identification: Connection closed by remote host\n"
          "Connection closed by 127.0.0.1 port 22", "wait"),
    (255, "** WARNING: connection is not using a post-quantum key exchange algorithm.\n"
          "Connection closed by 127.0.0.1 port 22", "wait"),
    (255, CHANGED, "host key"),
    (255, BAD_KEY, "refused"),
    (255, "Received disconnect from 127.0.0.1 port 22:2: Too many authentication failures", "refused"),
    (255, ETC_NOLOGIN, "refused"),  # an operator's /etc/nologin
    (255, "System is going down. Unprivileged users are not permitted to log in anymore.\n"
          "Connection closed by 127.0.0.1 port 22", "refused"),
    (1, "This account is currently not available.", "refused"),  # logged in; the shell refuses
])
def test_what_waiting_fixes_and_what_it_does_not(returncode: int, stderr: str, state: str) -> None:
    assert wake.classify(returncode, stderr) == state
