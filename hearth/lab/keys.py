"""SSH material: the lab's automation key, machine host keys, known_hosts.

Strict host-key checking stays on everywhere: each machine's host key is made when
the machine is created, and the lab writes them all to the known_hosts path the
inventory names, which pyinfra and testinfra both use.
"""

from __future__ import annotations

from pathlib import Path

from hearth.lab.sh import run

KNOWN_HOSTS_HEADER = "# written by `hearth lab up`; removed by `hearth lab down`\n"


def ensure_user_key(key: Path) -> str:
    """Create the lab's ed25519 key pair at ``key`` if absent; return the public key."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hearth-lab", "-f", str(key)])
    return Path(f"{key}.pub").read_text().strip()


def make_host_key(etc_ssh: Path) -> str:
    """Generate the machine's ed25519 host key under ``etc_ssh``; return the public key."""
    etc_ssh.mkdir(parents=True, exist_ok=True)
    priv = etc_ssh / "ssh_host_ed25519_key"
    if not priv.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(priv)])
    return host_key_line(etc_ssh)


def host_key_line(etc_ssh: Path) -> str:
    """``type base64`` of the host key under ``etc_ssh``."""
    parts = (etc_ssh / "ssh_host_ed25519_key.pub").read_text().split()
    return f"{parts[0]} {parts[1]}"


def known_hosts_text(entries: dict[str, tuple[str, str]], port: int) -> str:
    """known_hosts lines: ``entries`` maps name -> (address, host key)."""
    lines = [KNOWN_HOSTS_HEADER]
    for name, (address, key) in sorted(entries.items()):
        names = [name, address] if port == 22 else [f"[{name}]:{port}", f"[{address}]:{port}"]
        lines.append(f"{','.join(names)} {key}\n")
    return "".join(lines)


def write_known_hosts(path: Path, text: str) -> None:
    """Write the lab's known_hosts file (the lab owns this file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def remove_known_hosts(path: Path) -> bool:
    """Delete ``path`` only if the lab wrote it; True when removed."""
    if path.exists() and path.read_text().startswith(KNOWN_HOSTS_HEADER):
        path.unlink()
        return True
    return False


def secret_files(inventory: Path, root: Path) -> list[Path]:
    """The ``file:`` secret references of the inventory that live under the lab root."""
    from hearth.inventory import load_inventory

    inv = load_inventory(inventory)
    refs = [inv.gateway.admin_token if inv.gateway else None, inv.k3s.token if inv.k3s else None]
    refs += [client.key for client in inv.clients.values()]
    refs += [cloud.api_key for cloud in inv.clouds.values()]
    ha = inv.monitoring.home_assistant if inv.monitoring else None
    refs += [ha.password if ha else None]
    refs += [str(s.get("vllm_hf_token") or "") for s in (inv.settings, *(h.settings for h in inv.hosts.values()))]
    paths = [Path(ref.removeprefix("file:")) for ref in refs if ref and ref.startswith("file:")]
    return [path for path in paths if path.resolve().is_relative_to(root.resolve())]


def ensure_secrets(paths: list[Path]) -> list[Path]:
    """Make each missing secret file: 32 random bytes, URL-safe, mode 0600. Returns the new ones."""
    import os
    import secrets

    made = []
    for path in paths:
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        made.append(path)
    return made
