"""known_hosts the lab writes (and only removes when it wrote it); the apt proxy's allowlist."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from hearth.lab import aptproxy, keys


def test_known_hosts_lines_name_host_and_address() -> None:
    text = keys.known_hosts_text({"b": ("10.0.0.2", "ssh-ed25519 BBB"),
                                  "a": ("10.0.0.1", "ssh-ed25519 AAA")}, 22)  # fmt: skip
    lines = text.splitlines()
    assert lines[0].startswith("# written by `hearth lab up`")
    assert lines[1:] == ["a,10.0.0.1 ssh-ed25519 AAA", "b,10.0.0.2 ssh-ed25519 BBB"]
    other_port = keys.known_hosts_text({"a": ("10.0.0.1", "ssh-ed25519 AAA")}, 2222)
    assert "[a]:2222,[10.0.0.1]:2222 ssh-ed25519 AAA" in other_port


def test_only_a_lab_written_known_hosts_is_removed(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    keys.write_known_hosts(mine, keys.known_hosts_text({}, 22))
    theirs.write_text("host ssh-ed25519 KEY\n")
    assert keys.remove_known_hosts(mine) and not mine.exists()
    assert not keys.remove_known_hosts(theirs) and theirs.exists()


def test_apt_proxy_refuses_hosts_off_the_allowlist() -> None:
    server = aptproxy.serve("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        with httpx.Client(proxy=f"http://127.0.0.1:{port}") as client:
            refused = client.get("http://example.invalid/debian/")
        assert refused.status_code == 403
        assert "deb.debian.org" in refused.text
    finally:
        server.shutdown()
        server.server_close()
