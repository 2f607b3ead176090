"""Where the deployed gateway answers, checked from another machine over the overlay."""

from __future__ import annotations

import itertools
import json
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
             *upstream_lines(inv, _usable_upstreams(inv, ssh, url)),
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


def upstream_lines(inv: Inventory, usable: list[str] | None) -> list[str]:
    """Which of the inventory's upstreams the gateway reports usable, and which not yet.

    Example:
        upstream_lines(inv, ["lab-ollama", "lab-vllm"])
        # ["upstreams usable: lab-ollama, lab-vllm", "not usable now: lab-nas"]
    """
    if usable is None:
        return ["upstreams: not shown (the gateway gave no list to the admin token)"]
    from hearth.gateway.from_inventory import gateway_config_from_inventory

    serial = itertools.count()  # the upstream names only: no secret is read, each stand-in differs
    names = gateway_config_from_inventory(inv, resolve=lambda ref: f"unread-{next(serial)}").upstreams
    rest = [n for n in names if n not in usable]
    return [f"upstreams usable: {', '.join(usable) or 'none'}",
            *([f"not usable now: {', '.join(rest)} (asleep, waking, or not up yet: `hearth status`)"] if rest else [])]


def _usable_upstreams(inv: Inventory, ssh: list[str], url: str) -> list[str] | None:
    """The gateway's usable upstreams, asked with the admin token from the peer; the
    token goes through SSH's stdin as curl's header file, never on a command line."""
    ref = inv.gateway.admin_token if inv.gateway else None
    if not ref or not ref.startswith("file:"):
        return None
    try:
        token = Path(ref.removeprefix("file:")).read_text().strip()
    except OSError:
        return None
    probe = [*ssh, f"curl -sS -m 5 -H @- {url.removesuffix('/v1')}/readyz"]
    result = subprocess.run(probe, input=f"Authorization: Bearer {token}\n", capture_output=True, text=True,
                            timeout=30, check=False)
    try:
        usable = json.loads(result.stdout).get("usable_upstreams")
    except (ValueError, AttributeError):
        return None
    return [str(n) for n in usable] if isinstance(usable, list) else None
