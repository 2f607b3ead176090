"""Where the deployed gateway answers, checked from another machine over the overlay."""

from __future__ import annotations

import shlex
import subprocess
import sys
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
    lines = [f"gateway: {url} (loopback and overlay only; from {peers[0]}: /readyz -> {answer})",
             "try it (the openai client, from another lab machine):",
             f"  {Path(sys.argv[0]).parent / 'hearth'} lab try"]
    key = _client_key_file(inv)
    if key is not None:
        lines += ["or with curl from that machine (the key is read from its file on this machine):",
                  f"  {shlex.join(ssh)} \\",
                  f"    \"curl -s {url}/models -H 'Authorization: Bearer $(cat {key})'\""]
    return "\n".join(lines)


def _client_key_file(inv: Inventory) -> str | None:
    """The file holding the key of a client allowed every route, if the inventory keeps it in one."""
    for client in inv.clients.values():
        if client.routes is None and client.key.startswith("file:"):
            return client.key.removeprefix("file:")
    return None
