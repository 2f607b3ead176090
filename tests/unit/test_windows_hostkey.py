"""Host keys: `hearth hostkey check/accept` against an SSH server on loopback, and the
message a deploy prints when a key changed. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from hearth import hostkey
from hearth.cli import main


@pytest.fixture
def ssh_server() -> Iterator[Callable[[paramiko.PKey], int]]:
    """Start a key-exchange-only SSH server on 127.0.0.1 presenting a given host key."""
    stops: list[Callable[[], None]] = []

    def start(key: paramiko.PKey) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(10)
        done = threading.Event()

        def serve() -> None:
            while not done.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                transport = paramiko.Transport(conn)
                transport.add_server_key(key)
                try:
                    transport.start_server(server=paramiko.ServerInterface())
                    transport.join(10)
                except (paramiko.SSHException, EOFError, OSError):
                    pass
                finally:
                    transport.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()

        def stop() -> None:
            done.set()
            listener.close()
            thread.join(5)

        stops.append(stop)
        return listener.getsockname()[1]

    yield start
    for stop in stops:
        stop()


def inventory(write_inventory: Callable[..., Path], tmp_path: Path, port: int) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["ssh"]["known_hosts"] = str(tmp_path / "known_hosts")
        data["hosts"]["windows-gpu"].update(address="127.0.0.1", ssh_port=port)

    return write_inventory(change)


def test_fingerprint_is_openssh_s(tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "k")))
    printed = subprocess.run(["ssh-keygen", "-l", "-f", str(tmp_path / "k.pub")], check=True,
                             capture_output=True, text=True).stdout.split()[1]
    assert hostkey.fingerprint(key) == printed


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_changed_key_is_shown_and_accepted_only_on_purpose(
    ssh_server: Callable[[paramiko.PKey], int], write_inventory: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "old")))
    new = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "new")))
    port = ssh_server(new)  # the box after a feature update reset its key
    inv = inventory(write_inventory, tmp_path, port)
    entry = f"[127.0.0.1]:{port}"
    known = tmp_path / "known_hosts"
    other = f"192.168.1.10 ssh-ed25519 {old.get_base64()}\n"
    hashed = paramiko.HostKeys.hash_host(entry)
    known.write_text(f"# my hosts\n{other}{hashed} ssh-ed25519 {old.get_base64()}\n")
    known.chmod(0o600)

    assert main(["hostkey", "check", str(inv), "windows-gpu"]) == 1
    out = capsys.readouterr().out
    assert f"CHANGED windows-gpu ({entry}): known ssh-ed25519 {hostkey.fingerprint(old)}" in out
    assert f"offered ssh-ed25519 {hostkey.fingerprint(new)}" in out

    # A fingerprint that is not the one offered: nothing changes
    assert main(["hostkey", "accept", str(inv), "windows-gpu", "--expect", hostkey.fingerprint(old)]) == 1
    assert hashed in known.read_text()
    # Without --yes or --expect and no terminal to ask: nothing changes
    assert main(["hostkey", "accept", str(inv), "windows-gpu"]) == 1
    assert hashed in known.read_text()
    capsys.readouterr()

    assert main(["hostkey", "accept", str(inv), "windows-gpu", "--expect", hostkey.fingerprint(new)]) == 0
    out = capsys.readouterr().out
    assert f"known:   ssh-ed25519 {hostkey.fingerprint(old)}" in out
    assert f"offered: ssh-ed25519 {hostkey.fingerprint(new)}" in out
    text = known.read_text()
    assert text.startswith(f"# my hosts\n{other}")  # other lines untouched
    assert hashed not in text and text.endswith(f"{entry} ssh-ed25519 {new.get_base64()}\n")
    assert known.stat().st_mode & 0o777 == 0o600
    assert main(["hostkey", "check", str(inv), "windows-gpu"]) == 0
    assert main(["hostkey", "accept", str(inv), "windows-gpu", "--yes"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_the_deploy_message_names_the_host_and_both_fingerprints(
    write_inventory: Callable[..., Path], tmp_path: Path,
) -> None:
    from hearth.inventory import load_inventory

    path = write_inventory()
    hostkey.guard_deploy(load_inventory(path), path)
    old = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "old")))
    new = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "new")))
    message = hostkey.changed_key_message("192.168.1.30", old, new)
    assert "windows-gpu (192.168.1.30) changed" in message
    assert hostkey.fingerprint(old) in message and hostkey.fingerprint(new) in message
    assert f"hearth hostkey accept {path} windows-gpu" in message


def test_the_guard_logs_and_still_refuses(monkeypatch: pytest.MonkeyPatch, write_inventory: Callable[..., Path],
                                          tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pyinfra.connectors.sshuserclient import client

    from hearth.inventory import load_inventory

    old = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "old")))
    new = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "new")))

    def refuse(self: Any, hostname: str, *args: Any, **kwargs: Any) -> None:
        raise paramiko.BadHostKeyException(hostname, new, old)

    monkeypatch.setattr(client.SSHClient, "connect", refuse)
    path = write_inventory()
    hostkey.guard_deploy(load_inventory(path), path)
    with pytest.raises(paramiko.BadHostKeyException), caplog.at_level("ERROR", logger="pyinfra"):
        client.SSHClient().connect("192.168.1.30")  # the wrapped connect: the fake raises, nothing is sent
    assert any("windows-gpu (192.168.1.30) changed" in r.message and hostkey.fingerprint(new) in r.message
               for r in caplog.records)
