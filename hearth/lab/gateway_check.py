"""Where the deployed gateway answers, checked from another machine over the overlay."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hearth.inventory import Inventory, load_inventory


def gateway_url(inv: Inventory) -> str | None:
    if inv.gateway is None:
        return None
    address = inv.hosts[inv.gateway.host].overlay_ip
    return f"http://{address}:{inv.gateway.port}/v1"


def ssh_command(inv: Inventory, host: str) -> list[str]:
    """ssh to an inventory host as the deploy does: its key, strict host-key checking."""
    target = inv.hosts[host]
    argv = ["ssh", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(target.ssh_port or inv.ssh.port)]
    if inv.ssh.key:
        argv += ["-i", inv.ssh.key]
    if inv.ssh.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={inv.ssh.known_hosts}"]
    return [*argv, f"{target.ssh_user or inv.ssh.user}@{target.address}"]


def banner(inventory: Path) -> str:
    """Say where the gateway answers, after asking its /readyz from a peer on the overlay."""
    inv = load_inventory(inventory)
    url = gateway_url(inv)
    if url is None:
        return "no gateway in this inventory"
    peers = [n for n, h in inv.hosts.items() if h.os == "linux" and n != inv.gateway.host]  # type: ignore[union-attr]
    if not peers:
        return f"gateway: {url}"
    probe = [*ssh_command(inv, peers[0]), f"curl -sS -m 5 {url.removesuffix('/v1')}/readyz"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    answer = (result.stdout or result.stderr).strip().replace("\n", " ")[:200]
    return (
        f"gateway: {url} (loopback and overlay only; from {peers[0]}: /readyz -> {answer})\n"
        f"try it:  {' '.join(ssh_command(inv, peers[0]))} \\\n"
        f"           curl -s {url}/models -H 'Authorization: Bearer <a client key>'"
    )
