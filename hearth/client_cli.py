"""`hearth client add INVENTORY NAME`: a laptop, phone or NAS on the overlay.

Makes a WireGuard key pair on this machine, writes the device into the inventory
(``client_devices``: its overlay address and **public** key only), and writes the
device's WireGuard config and a QR code of it (for the official WireGuard apps)
to ``--out``, 0600, outside any repository. The private key is printed once, in
the config and the QR code on the terminal, and kept nowhere else. The next deploy
makes the gateway host accept the device (``hearth.configs.client_devices``).

    hearth client add inventory/home.yml laptop --out ~/wg
    pyinfra inventory/home.py deploy.py --limit <gateway host>
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import re
import sys
from pathlib import Path

from hearth.inventory import Inventory, InventoryError, load_inventory
from hearth.inventory.model_devices import NAME

DEFAULT_OUT = "~/.config/hearth/devices"


def keypair() -> tuple[str, str]:
    """(private, public) WireGuard keys, base64, as `wg genkey | wg pubkey` makes them."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = bytearray(X25519PrivateKey.generate().private_bytes_raw())
    raw[0] &= 248  # clamped like `wg genkey`
    raw[31] = (raw[31] & 127) | 64
    public = X25519PrivateKey.from_private_bytes(bytes(raw)).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(bytes(raw)).decode(), base64.b64encode(public).decode()


def default_cidr(inv: Inventory) -> ipaddress.IPv4Network:
    """The network of ``overlay.cidr``'s size right after it (10.77.0.0/24 -> 10.77.1.0/24)."""
    o = inv.overlay.cidr
    return ipaddress.IPv4Network((int(o.network_address) + o.num_addresses, o.prefixlen))


def next_address(inv: Inventory, cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The first free device address (the range's first is the gateway host's)."""
    cd = inv.client_devices
    used = {d.address for d in cd.devices.values()} if cd else set()
    hosts = list(cidr.hosts())[1:]
    for addr in hosts:
        if addr not in used:
            return addr
    raise ValueError(f"client_devices.cidr {cidr} is full ({len(hosts)} devices)")


def add_to_text(text: str, name: str, address: str, public_key: str, cidr: str) -> str:
    """The inventory text with the device added (comments and layout kept)."""
    entry = f'    {name}: {{address: {address}, public_key: "{public_key}"}}'
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"^client_devices:\s*(#.*)?$", ln)),
                 None)
    if start is None:
        tail = "" if text.endswith("\n") else "\n"
        return (f"{text}{tail}\nclient_devices:               # devices on the overlay: "
                f"`hearth client add` (public keys only)\n  cidr: {cidr}\n  devices:\n{entry}\n")
    end = next((i for i in range(start + 1, len(lines))
                if lines[i] and not lines[i].startswith((" ", "#"))), len(lines))
    dev = next((i for i in range(start + 1, end)
                if re.match(r"^  devices:\s*(\{\s*\})?\s*(#.*)?$", lines[i])), None)
    if dev is None:
        last = max((i for i in range(start, end) if lines[i].strip()), default=start)
        lines[last + 1:last + 1] = ["  devices:", entry]
    else:
        lines[dev] = re.sub(r":\s*\{\s*\}", ":", lines[dev], count=1)
        last = dev
        for i in range(dev + 1, end):
            if lines[i].startswith("    "):
                last = i
            elif lines[i].strip():
                break
        lines[last + 1:last + 1] = [entry]
    return "\n".join(lines) + "\n"


def inside_a_repository(path: Path) -> Path | None:
    """The repository (a folder holding ``.git``) ``path`` is in, or None."""
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return None


def server_public_key(inv: Inventory) -> str:
    """The gateway host's WireGuard public key, read over SSH (strict host keys)."""
    from hearth.plan_facts import ssh_runner

    assert inv.gateway is not None
    pub = f"/etc/wireguard/{inv.overlay.interface}.pub"  # in a 0700 root folder
    key = ssh_runner(inv, inv.gateway.host,
                     f"cat {pub} 2>/dev/null || sudo -n cat {pub}\n").strip()
    if not re.fullmatch(r"[A-Za-z0-9+/]{43}=", key):
        raise ConnectionError(f"no WireGuard public key on {inv.gateway.host} "
                              f"(/etc/wireguard/{inv.overlay.interface}.pub): deploy it first")
    return key


def cmd_add(args: argparse.Namespace) -> int:
    from hearth.commands import inventory_path, load_or_report
    from hearth.configs.client_devices import device_config
    from hearth.deploy_data import group_defaults
    from hearth.kubeconfig import write_private

    path = inventory_path(args.inventory)
    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    name = args.name
    if not re.fullmatch(NAME, name):
        print(f"hearth: device name {name!r}: lower-case letters, digits and '-'", file=sys.stderr)
        return 2
    if inv.gateway is None or inv.overlay.kind != "wireguard":
        print("hearth: client devices need a gateway and hearth's WireGuard overlay", file=sys.stderr)
        return 2
    if inv.client_devices is not None and name in inv.client_devices.devices:
        print(f"hearth: {path}: client_devices.devices.{name} exists already (remove it first "
              "to give the device a new key)", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser().resolve()
    repo = inside_a_repository(out)
    if repo is not None:
        print(f"hearth: --out {out} is inside the repository {repo}: the device's private key "
              "is never stored in a repository; choose a folder outside it", file=sys.stderr)
        return 2
    try:
        server_key = args.server_key or server_public_key(inv)
    except (ConnectionError, OSError) as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
    cidr = inv.client_devices.cidr if inv.client_devices else default_cidr(inv)
    try:
        address = next_address(inv, cidr)
    except ValueError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
    private, public = keypair()
    before = path.read_text()
    path.write_text(add_to_text(before, name, str(address), public, str(cidr)))
    try:
        inv = load_inventory(path, group_defaults())
    except InventoryError as exc:
        path.write_text(before)  # leave the inventory as it was
        print(f"hearth: the inventory would not validate with {name} in it (left unchanged):",
              file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        return 2
    text = device_config(inv, name, private, server_key, args.endpoint)
    conf = out / f"{inv.name}-{name}.conf"
    write_private(conf, text)
    qr = _qr(text)
    png = out / f"{inv.name}-{name}.png"
    write_private(png, "")
    qr.save(str(png), kind="png", scale=6)
    print(f"added client device {name} ({address}, public key {public}) to {path}\n"
          f"wrote {conf} and {png} (0600): the device's only copy of its private key\n"
          f"next: deploy the gateway host ({inv.gateway.host}) so it accepts the device\n")
    if not args.quiet:
        print("The device's config (shown once; the private key is kept nowhere else):\n")
        print(text)
        qr.terminal(out=sys.stdout, compact=True)
    return 0


def _qr(text: str):  # type: ignore[no-untyped-def]
    import segno

    return segno.make(text, error="m", micro=False)


def cmd_list(args: argparse.Namespace) -> int:
    from hearth.commands import load_or_report

    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    cd = inv.client_devices
    if cd is None or not cd.devices:
        print("no client devices")
        return 0
    for name, dev in cd.devices.items():
        print(f"{name}\t{dev.address}\t{dev.public_key}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("client", help="client devices on the overlay (laptops, phones)")
    sub = parser.add_subparsers(dest="client_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="key pair, inventory entry, WireGuard config + QR code")
    add.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    add.add_argument("name", help="the device's name (laptop, phone, nas)")
    add.add_argument("--out", default=DEFAULT_OUT,
                     help=f"folder for the config and QR code, outside any repository "
                          f"(default {DEFAULT_OUT})")
    add.add_argument("--endpoint", help="HOST:PORT the device dials (default: the gateway "
                                        "host's LAN address and the overlay port)")
    add.add_argument("--server-key", help="the gateway host's WireGuard public key (default: "
                                          "read over SSH)")
    add.add_argument("--quiet", action="store_true",
                     help="do not print the config and QR code (they are in --out)")
    add.set_defaults(func=cmd_add)
    ls = sub.add_parser("list", help="the inventory's client devices")
    ls.add_argument("inventory")
    ls.set_defaults(func=cmd_list)
