"""`hearth windows bootstrap INVENTORY HOST`: the one step done by hand on a Windows box.

Writes a PowerShell script (from the inventory) that a person runs once as
Administrator on the box; from then on hearth reaches it over SSH like any host.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hearth.commands import load_or_report
from hearth.configs import windows as configs


def cmd_bootstrap(args: argparse.Namespace) -> int:
    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    host = inv.hosts.get(args.host)
    if host is None or host.os != "windows":
        windows = ", ".join(inv.windows_hosts()) or "none"
        print(f"hearth windows bootstrap: {args.host} is not an os: windows host of {args.inventory} "
              f"(Windows hosts: {windows})", file=sys.stderr)
        return 2
    if not inv.ssh.key:
        print("hearth windows bootstrap: set ssh.key in the inventory (the deploy key; its .pub half goes "
              "on the box)", file=sys.stderr)
        return 2
    public = Path(inv.ssh.key).expanduser().with_name(Path(inv.ssh.key).name + ".pub")
    try:
        deploy_key = public.read_text().strip()
    except OSError as exc:
        print(f"hearth windows bootstrap: cannot read the deploy key's public half {public}: {exc.strerror}",
              file=sys.stderr)
        return 2
    script = configs.bootstrap_script(inv, args.host, deploy_key)
    out = Path(args.out) / script.dest
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(script.render())
    user = host.ssh_user or inv.ssh.user
    print(f"""wrote {out}

On {args.host} ({host.address}), once:
  1. copy {out.name} to the box (USB stick, a share);
  2. open PowerShell with "Run as Administrator" (signed in as {user}, an administrator);
  3. run:  powershell.exe -NoProfile -ExecutionPolicy Bypass -File .\\{out.name}
  4. note the host key fingerprints it prints at the end.
Then, here:
  hearth hostkey accept {args.inventory} {args.host} --expect SHA256:<the ed25519 fingerprint it printed>
  pyinfra {Path(args.inventory).with_suffix('.py')} deploy.py""")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("windows", help="Windows GPU boxes: first contact")
    sub = parser.add_subparsers(dest="windows_command", metavar="ACTION", required=True)
    boot = sub.add_parser("bootstrap", help="write the one-time PowerShell script that opens SSH on a Windows box")
    boot.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    boot.add_argument("host", help="the os: windows host")
    boot.add_argument("--out", default=".", help="folder to write hearth-bootstrap-<host>.ps1 into")
    boot.set_defaults(func=cmd_bootstrap)
