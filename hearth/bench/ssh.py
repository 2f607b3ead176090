"""`hearth bench ssh`: one SSH command's round trip with Nagle on (paramiko's default) and off.

What a deploy pays per fact and per command (hearth/connection.py). Two paramiko
connections to one lab machine, the same key and strict host-key checking as the
deploy, one with ``TCP_NODELAY``; the same commands alternate between them, and the
medians print side by side. Run it against a deployed lab (`make lab`).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time
from pathlib import Path

import paramiko

from hearth.lab import cycle
from hearth.lab.spec import LabSpec, load_spec

COMMANDS = (
    "true",
    "sudo -H -n sh -c true",
    "sudo -H -n sh -c 'dpkg -l' >/dev/null",
    "sudo -H -n sh -c 'systemctl show -p ActiveState ssh.service'",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench ssh`."""
    p = subparsers.add_parser("ssh", help="one SSH command's round trip, Nagle on vs off (a deployed lab)")
    p.add_argument("--inventory", type=Path, default=cycle.REPO / "inventory" / "lab.yml")
    p.add_argument("--host", help="lab machine (default: the first)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--out", type=Path, help="also write the medians here (JSON)")
    p.set_defaults(func=run)


def connect(spec: LabSpec, address: str, nodelay: bool) -> paramiko.SSHClient:
    """A paramiko client as pyinfra opens it (strict host keys), Nagle off if ``nodelay``."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(spec.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(address, port=spec.ssh_port, username=spec.ssh_user, key_filename=str(spec.ssh_key),
                   look_for_keys=False, allow_agent=False, timeout=10)
    transport = client.get_transport()
    if nodelay and transport is not None:
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def round_trip_ms(client: paramiko.SSHClient, command: str) -> float:
    """Wall time of one command: channel open, exec, all output, exit status."""
    start = time.perf_counter()
    _, out, _ = client.exec_command(command)
    out.read()
    if out.channel.recv_exit_status() != 0:
        raise RuntimeError(f"{command!r} failed")
    return (time.perf_counter() - start) * 1000


def measure(clients: dict[str, paramiko.SSHClient], rounds: int) -> dict[str, dict[str, float]]:
    """Median ms per command and connection kind, the kinds alternated round by round."""
    samples: dict[str, dict[str, list[float]]] = {c: {k: [] for k in clients} for c in COMMANDS}
    for _ in range(rounds):
        for command in COMMANDS:
            for kind, client in clients.items():
                samples[command][kind].append(round_trip_ms(client, command))
    return {c: {k: round(statistics.median(v), 2) for k, v in by.items()} for c, by in samples.items()}


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.inventory)
    machine = spec.machine(args.host) if args.host else spec.machines[0]
    clients = {"nagle": connect(spec, machine.address, False), "nodelay": connect(spec, machine.address, True)}
    try:
        medians = measure(clients, args.rounds)
    finally:
        for client in clients.values():
            client.close()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{machine.name}: median of {args.rounds}, load {load}")
    print(f"{'Nagle on':>10} {'TCP_NODELAY':>12}  command")
    for command, by in medians.items():
        print(f"{by['nagle']:8.1f}ms {by['nodelay']:10.1f}ms  {command}")
    if args.out:
        args.out.write_text(json.dumps({"host": machine.name, "load": float(load), "median_ms": medians}, indent=2))
    return 0
