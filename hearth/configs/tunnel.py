"""``windows.reach: ssh_tunnel``: the gateway host reaches a Windows box through SSH.

Seed 000's bridge: the box stays off the overlay, its model servers listen on its
own loopback, and the gateway host keeps one supervised ``ssh -N -L`` per box
(``hearth-tunnel-<host>.service``, user ``hearth-tunnel``), forwarding
``127.0.0.1:<local port>`` on the gateway host to ``127.0.0.1:<serve port>`` on the
box. The tunnel's key pair is made on the gateway host; its public half goes into
the box's ``administrators_authorized_keys`` restricted to forwarding exactly those
ports (roles/windows/sshd.py). Host keys are checked strictly against a known_hosts
the deploy writes from the deployer's known_hosts (the file ``hearth hostkey accept``
maintains), under the inventory's host name (``HostKeyAlias``), so a changed key
stops the tunnel with the host named instead of being retried or accepted.
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.configs import ConfigFile
from hearth.inventory import Inventory

USER = "hearth-tunnel"
HOME = "/var/lib/hearth-tunnel"
KEY = f"{HOME}/id_ed25519"
ETC = "/etc/hearth/tunnel"
KNOWN_HOSTS = f"{ETC}/known_hosts"
RUNNER = "/usr/local/libexec/hearth-tunnel"
PYTHON = "/usr/bin/python3"
SSH = "/usr/bin/ssh"
UNIT_DIR = "/etc/systemd/system"
MARKER = "hearth-tunnel"  # the comment of the key line on the box: "hearth-tunnel@<gateway host>"
PORT_OFFSET = 20000  # default local port: serve port + this
RESTART_SEC = 5  # a sleeping box: try again this often (each try gives up after CONNECT_TIMEOUT_S)
CONNECT_TIMEOUT_S = 10
ALIVE_INTERVAL_S = 10  # a box gone to sleep: the tunnel notices within ALIVE_INTERVAL_S * ALIVE_COUNT_MAX
ALIVE_COUNT_MAX = 3
HOSTKEY_EXIT = 78  # the runner's exit code for a changed or unknown host key: systemd does not restart it
K3S_PORTS = (2379, 2380, 6443, 10248, 10249, 10250, 10256, 10257, 10259)


class TunnelKeyError(ValueError):
    """A tunnel host has no host key recorded in the deployer's known_hosts."""


@dataclass(frozen=True)
class Paths:
    """Where the tunnel's pieces are on the gateway host (a test points them elsewhere)."""

    key: str = KEY
    known_hosts: str = KNOWN_HOSTS
    runner: str = RUNNER
    python: str = PYTHON
    ssh: str = SSH


def tunnel_hosts(inv: Inventory) -> list[str]:
    """Windows hosts the gateway reaches through an SSH tunnel."""
    if inv.gateway is None:
        return []
    return [name for name, host in inv.hosts.items()
            if host.os == "windows" and host.windows is not None and host.windows.reach == "ssh_tunnel"]


def local_port(inv: Inventory, name: str, serve_port: int) -> int:
    """The gateway host's loopback port that leads to ``serve_port`` on the box."""
    host = inv.hosts[name]
    ports = host.windows.tunnel_ports if host.windows else {}
    return ports.get(serve_port, serve_port + PORT_OFFSET)


def forwards(inv: Inventory, name: str) -> list[tuple[int, int]]:
    """(local port on the gateway host, serve port on the box), by serve port."""
    serve_ports = sorted({s.listen_port for s in inv.hosts[name].serves})
    return [(local_port(inv, name, port), port) for port in serve_ports]


def local_url(inv: Inventory, name: str, serve_port: int) -> str:
    """The gateway's upstream URL for a serve behind the tunnel."""
    return f"http://127.0.0.1:{local_port(inv, name, serve_port)}"


def unit_name(name: str) -> str:
    return f"hearth-tunnel-{name}.service"


def ssh_port(inv: Inventory, name: str) -> int:
    return inv.hosts[name].ssh_port or inv.ssh.port


def ssh_user(inv: Inventory, name: str) -> str:
    return inv.hosts[name].ssh_user or inv.ssh.user


def command(inv: Inventory, name: str, paths: Paths = Paths()) -> list[str]:
    """The tunnel's command line: the runner (which names the host when its key is
    refused) around ``ssh -N -L ...`` with every option given (no ssh_config read)."""
    host = inv.hosts[name]
    options = {
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "IdentityFile": paths.key,
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": paths.known_hosts,
        "GlobalKnownHostsFile": "/dev/null",
        "HostKeyAlias": name,
        "UpdateHostKeys": "no",
        "CheckHostIP": "no",
        "ExitOnForwardFailure": "yes",
        "ServerAliveInterval": str(ALIVE_INTERVAL_S),
        "ServerAliveCountMax": str(ALIVE_COUNT_MAX),
        "ConnectTimeout": str(CONNECT_TIMEOUT_S),
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "ForwardAgent": "no",
        "ForwardX11": "no",
        "PermitLocalCommand": "no",
    }
    argv = [paths.python, paths.runner, name, paths.known_hosts, "--",
            paths.ssh, "-N", "-T", "-F", "/dev/null", "-p", str(ssh_port(inv, name)), "-l", ssh_user(inv, name)]
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    for local, remote in forwards(inv, name):
        argv += ["-L", f"127.0.0.1:{local}:127.0.0.1:{remote}"]
    argv.append(host.address)
    return argv


def exec_start(argv: list[str]) -> str:
    """A command line for a unit's ExecStart= (systemd's quoting is shell-like; % is its specifier)."""
    return shlex.join(argv).replace("%", "%%")


def unit(inv: Inventory, name: str, paths: Paths = Paths()) -> ConfigFile:
    """The tunnel's unit; it goes over the LAN, so it waits for the network, not the overlay."""
    assert inv.gateway is not None
    host = inv.hosts[name]
    ports = ", ".join(f"127.0.0.1:{local} -> {name}:{remote}" for local, remote in forwards(inv, name))
    return ConfigFile(
        dest=f"{UNIT_DIR}/{unit_name(name)}",
        template="gateway/hearth-tunnel.service.j2",
        context={"host": name, "address": host.address, "ports": ports, "user": USER,
                 "exec_start": exec_start(command(inv, name, paths)), "restart_sec": RESTART_SEC,
                 "hostkey_exit": HOSTKEY_EXIT},
    )


def authorized_key_line(inv: Inventory, name: str, public_key: str) -> str:
    """The line on the box: the gateway's tunnel key, allowed to forward to exactly the
    box's serve ports on its loopback and nothing else: ``restrict`` (no pty, agent, X11,
    other forwarding), and a forced command that only fails, so the key (which logs in
    as an administrator) runs nothing on the box; the tunnel asks for no command (-N)."""
    assert inv.gateway is not None
    parts = public_key.split()
    if len(parts) < 2 or not parts[0].startswith("ssh-"):
        raise ValueError(f"not an OpenSSH public key: {public_key[:40]!r}")
    opens = ",".join(f'permitopen="127.0.0.1:{remote}"' for _, remote in forwards(inv, name))
    return f'restrict,port-forwarding,{opens},command="exit 1" {parts[0]} {parts[1]} {MARKER}@{inv.gateway.host}'


def recorded_keys(inv: Inventory, name: str, known_hosts: Path | None = None) -> list[tuple[str, str]]:
    """(key type, base64) recorded for the box in the deployer's known_hosts (plain or hashed lines)."""
    from hearth.hostkey import host_entry, known_hosts_path, known_keys

    path = known_hosts or known_hosts_path(inv)
    entry = host_entry(inv.hosts[name].address, ssh_port(inv, name))
    return sorted((key_type, key.get_base64()) for key_type, key in known_keys(path, entry).items())


def missing_host_keys(inv: Inventory, known_hosts: Path | None = None) -> list[str]:
    """One line per tunnel host without a recorded host key, with what to do."""
    from hearth.hostkey import host_entry, known_hosts_path

    path = known_hosts or known_hosts_path(inv)
    return [f"hosts.{name}: reach ssh_tunnel needs the box's SSH host key in {path} "
            f"({host_entry(inv.hosts[name].address, ssh_port(inv, name))}), which it lacks: "
            f"run the bootstrap, then hearth hostkey accept INVENTORY {name} --expect SHA256:..."
            for name in tunnel_hosts(inv) if not recorded_keys(inv, name, known_hosts)]


def known_hosts(inv: Inventory, known: Path | None = None) -> ConfigFile:
    """The gateway host's known_hosts for the tunnels: each box's recorded key under its
    inventory name (the tunnel's HostKeyAlias)."""
    missing = missing_host_keys(inv, known)
    if missing:
        raise TunnelKeyError("; ".join(missing))
    lines = [f"{name} {key_type} {key}"
             for name in tunnel_hosts(inv) for key_type, key in recorded_keys(inv, name, known)]
    return ConfigFile(dest=KNOWN_HOSTS, template="gateway/tunnel_known_hosts.j2", context={"lines": lines})


def gateway_ports(inv: Inventory) -> dict[int, str]:
    """TCP ports already taken on the gateway host: port -> by what."""
    from hearth.gateway.recover import PORT as RECOVER_PORT

    assert inv.gateway is not None
    gw = inv.gateway.host
    host = inv.hosts[gw]
    taken = {ssh_port(inv, gw): f"hosts.{gw} SSH", RECOVER_PORT: "the CUDA recovery trigger"}
    if host.in_k3s:
        taken.update(dict.fromkeys(K3S_PORTS, "k3s"))
    for i, serve in enumerate(host.serves):
        taken[serve.listen_port] = f"hosts.{gw}.serves[{i}] ({serve.name})"
    taken[inv.gateway.port] = "gateway.port (the gateway and its admin API)"
    return taken


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """The gateway host's tunnel units and known_hosts (for ``hearth render``)."""
    if inv.gateway is None or inv.gateway.host != name or not tunnel_hosts(inv):
        return []
    files = [unit(inv, box) for box in tunnel_hosts(inv)]
    with contextlib.suppress(TunnelKeyError):  # the deploy refuses until the keys are recorded
        files.append(known_hosts(inv))
    return files
