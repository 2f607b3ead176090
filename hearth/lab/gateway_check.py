"""Where the deployed gateway answers, checked from another machine over the overlay."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hearth.inventory import Inventory, load_inventory
from hearth.lab import power_cli
from hearth.lab.state import lab_root, load_record


def gateway_url(inv: Inventory) -> str | None:
    if inv.gateway is None:
        return None
    address = inv.hosts[inv.gateway.host].overlay_ip
    return f"http://{address}:{inv.gateway.port}/v1"


def banner(inventory: Path) -> str:
    """Say where the gateway answers, after asking its /readyz from a peer on the overlay."""
    inv = load_inventory(inventory)
    url = gateway_url(inv)
    if url is None:
        return "no gateway in this inventory"
    peers = [n for n, h in inv.hosts.items() if h.os == "linux" and n != inv.gateway.host]  # type: ignore[union-attr]
    if not peers:
        return f"gateway: {url}"
    lab = load_record(lab_root())
    if lab is None or peers[0] not in lab.machines:
        return f"gateway: {url}"
    ssh = power_cli.ssh_argv(lab, lab.machines[peers[0]], "")[:-1]
    probe = [*ssh, f"curl -sS -m 5 {url.removesuffix('/v1')}/readyz"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    answer = (result.stdout or result.stderr).strip().replace("\n", " ")[:200]
    return (
        f"gateway: {url} (loopback and overlay only; from {peers[0]}: /readyz -> {answer})\n"
        f"try it:  {' '.join(ssh)} \\\n"
        f"           curl -s {url}/models -H 'Authorization: Bearer <a client key>'"
    )
