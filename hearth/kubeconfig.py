"""`hearth kubeconfig INVENTORY`: the cluster's admin kubeconfig for the operator, 0600.

Read over SSH from the first server (/etc/rancher/k3s/k3s.yaml, over the deploy's ssh
line :func:`hearth.plan_facts.ssh_argv`: strict host-key checking with the inventory's
known_hosts), its server URL set to the first server's overlay address (k3s writes
https://127.0.0.1:6443), its names set to the inventory's, written with mode 0600 and
never printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from hearth.configs import k3s as configs
from hearth.inventory import Inventory
from hearth.plan_facts import ssh_argv


def api_url(inv: Inventory) -> str:
    """https://<first server overlay IP>:<https-listen-port> (6443 unless the inventory moves it)."""
    assert inv.k3s is not None
    first = inv.k3s.server
    values = configs.config_values(inv, first)
    port = int(values.get("https-listen-port", configs.API_PORT))
    return f"https://{inv.hosts[first].overlay_ip}:{port}"


def rewrite(text: str, inv: Inventory) -> str:
    """k3s's k3s.yaml with the overlay server URL and the inventory's names."""
    data: dict[str, Any] = yaml.safe_load(text)
    if not isinstance(data, dict) or not data.get("clusters") or not data.get("users"):
        raise ValueError("the first server's k3s.yaml is not a kubeconfig")
    name = f"hearth-{inv.name}"
    cluster, user, context = data["clusters"][0], data["users"][0], (data.get("contexts") or [{}])[0]
    cluster["cluster"]["server"] = api_url(inv)
    cluster["name"] = user["name"] = name
    data["clusters"], data["users"] = [cluster], [user]
    data["contexts"] = [{"name": name, "context": {**context.get("context", {}), "cluster": name, "user": name}}]
    data["current-context"] = name
    return yaml.safe_dump(data, sort_keys=False)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte (then move into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.hearth-new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def fetch(inv: Inventory, timeout: float = 30) -> str:
    assert inv.k3s is not None
    user = inv.hosts[inv.k3s.server].ssh_user or inv.ssh.user
    read = f"cat {configs.KUBECONFIG}" if user == "root" else f"sudo -n cat {configs.KUBECONFIG}"
    done = subprocess.run(ssh_argv(inv, inv.k3s.server, read), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"cannot read {configs.KUBECONFIG} on {inv.k3s.server}: "
                           f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return done.stdout


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    from hearth.commands import load_or_report

    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    if inv.k3s is None:
        print("hearth: this inventory has no k3s section", file=sys.stderr)
        return 2
    out = Path(args.out or f"~/.kube/hearth-{inv.name}.yaml").expanduser()
    try:
        text = rewrite(fetch(inv), inv)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
    write_private(out, text)
    print(f"wrote {out} (0600): cluster {inv.name} at {api_url(inv)} (on the overlay)\n"
          f"  export KUBECONFIG={out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("kubeconfig", help="write the k3s admin kubeconfig (0600, API on the overlay)")
    parser.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    parser.add_argument("--out", help="where to write it (default ~/.kube/hearth-<name>.yaml)")
    parser.set_defaults(func=cmd_kubeconfig)
