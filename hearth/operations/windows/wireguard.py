"""WireGuard for Windows: a key pair made on the box, a tunnel service from a rendered config."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from hearth import powershell as ps
from hearth.facts.windows import FirstLine
from hearth.operations.windows import run
from hearth.operations.windows.files import ADMIN_ONLY_ACL

WG_DIR = r"C:\Program Files\WireGuard"
KEY_DIR = r"C:\ProgramData\hearth\wireguard"


def paths(interface: str, key_dir: str = KEY_DIR) -> tuple[str, str, str]:
    """(private key, public key, tunnel config) of ``interface`` on the box."""
    return (f"{key_dir}\\{interface}.key", f"{key_dir}\\{interface}.pub", f"{key_dir}\\{interface}.conf")


@operation()
def keypair(interface: str, wg_dir: str = WG_DIR, key_dir: str = KEY_DIR):
    """
    Make the WireGuard key pair of ``interface`` on the box, once, with WireGuard
    for Windows' ``wg.exe``. The private key goes from ``wg genkey`` into a file only
    SYSTEM and Administrators can read; it is never printed and never leaves the box.
    The public half goes to ``<interface>.pub`` for the peers.

    **Example:**

    .. code:: python

        wireguard.keypair(name="WireGuard key pair (made on the box)", interface="wg0")
    """
    private, public, _ = paths(interface, key_dir)
    if host.get_fact(FirstLine, path=public):
        host.noop(f"{interface} already has a key pair")
        return
    wg = ps.quote(f"{wg_dir}\\wg.exe")
    yield run(
        f"New-Item -ItemType Directory -Force -Path {ps.quote(key_dir)} | Out-Null",
        ps.native(ADMIN_ONLY_ACL.format(path=ps.quote(key_dir)).replace(':F"', ':(OI)(CI)F"') + " | Out-Null"),
        "$ErrorActionPreference = 'Continue'  # native programs: their exit codes decide",
        f"$private = & {wg} genkey",
        "if ($LASTEXITCODE -ne 0 -or -not $private) { throw 'wg genkey failed' }",
        f"$public = $private | & {wg} pubkey",
        "if ($LASTEXITCODE -ne 0 -or -not $public) { throw 'wg pubkey failed' }",
        f"[IO.File]::WriteAllText({ps.quote(private)}, $private + \"`n\")",
        f"[IO.File]::WriteAllText({ps.quote(public)}, $public + \"`n\")",
        "Remove-Variable -Name private",
        "$ErrorActionPreference = 'Stop'",
    )


@operation()
def tunnel(interface: str, config: str, stamp: str, wg_dir: str = WG_DIR, key_dir: str = KEY_DIR):
    """
    Install WireGuard for Windows' tunnel service ``WireGuardTunnel$<interface>``
    from ``config`` (rendered by hearth, no private key in it). On the box the
    private key is read from its file and written into the tunnel's config (a file
    only SYSTEM and Administrators can read; WireGuard for Windows wants the key in
    the config). The config's first line is ``# <stamp>``: an unchanged config is
    not reinstalled; a changed one replaces the tunnel service.

    **Example:**

    .. code:: python

        wireguard.tunnel(name="wg0 tunnel service", interface="wg0", config=text, stamp="hearth 0a1b2c3d")
    """
    private, _, conf = paths(interface, key_dir)
    if host.get_fact(FirstLine, path=conf) == f"# {stamp}":
        host.noop(f"tunnel {interface} is installed with this config")
        return
    if "[Interface]" not in config:
        raise ValueError("a WireGuard config needs an [Interface] section")
    exe = ps.quote(f"{wg_dir}\\wireguard.exe")
    service = ps.quote(f"WireGuardTunnel${interface}")
    yield run(
        f"$key = (Get-Content -LiteralPath {ps.quote(private)} -TotalCount 1).Trim()",
        f"$config = {ps.quote(f'# {stamp}' + chr(10) + config)}",
        "$config = $config.Replace(\"[Interface]`n\", \"[Interface]`nPrivateKey = $key`n\")",
        f"[IO.File]::WriteAllText({ps.quote(conf)}, $config)",
        "Remove-Variable -Name @('key', 'config')",
        f"if (Get-Service -Name {service} -ErrorAction SilentlyContinue) {{",
        "  " + ps.native(f"& {exe} /uninstalltunnelservice {ps.quote(interface)}").replace("\n", "\n  "),
        "  $deadline = (Get-Date).AddSeconds(30)",
        f"  while ((Get-Service -Name {service} -ErrorAction SilentlyContinue) -and (Get-Date) -lt $deadline) {{",
        "    Start-Sleep -Milliseconds 250",
        "  }",
        "}",
        ps.native(f"& {exe} /installtunnelservice {ps.quote(conf)}"),
    )


@operation()
def windows_tunnel(inventory: str, host_name: str, wg_dir: str = WG_DIR, key_dir: str = KEY_DIR):
    """
    The tunnel of inventory host ``host_name`` with every peer's public key, read
    from the peers when this operation executes (after every key pair step ran),
    as the Linux overlay's ``wireguard.mesh_config`` does. A key still missing at
    execution is an error, never a placeholder in the tunnel.

    **Example:**

    .. code:: python

        wireguard.windows_tunnel(name="wg0 tunnel", inventory=host.data.hearth_inventory,
                                 host_name=host.data.hearth_host)
    """
    from pyinfra import state
    from pyinfra.api import OperationError

    from hearth.configs import windows as configs
    from hearth.inventory import load_cached
    from hearth.operations.wireguard import _peer_keys

    inv = load_cached(inventory)
    iface = inv.overlay.interface
    keys = _peer_keys(inventory, host_name, iface)
    missing = sorted(peer for peer, key in keys.items() if not key)
    if missing and state.is_executing:
        raise OperationError(f"no WireGuard public key on peer(s) {', '.join(missing)}")
    text = configs.wg_config(inv, host_name, {k: v for k, v in keys.items() if v}).render()
    yield from tunnel._inner(interface=iface, config=text, stamp=configs.stamp(text), wg_dir=wg_dir, key_dir=key_dir)
