"""``nft -c`` of a rendered ruleset, as the gateway host would check it.

The gateway host's output chain names the gateway's user (``meta skuid``), which nft
resolves from /etc/passwd: that host has it (the firewall role makes it before the
ruleset), a test machine does not. The check runs in a throwaway network and mount
namespace whose /etc/passwd is this machine's plus that user, so the rest of the
ruleset is checked by the kernel exactly as written.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from hearth.configs.gateway import STATE, USER


def nft_check(path: Path, unshare: bool = True) -> subprocess.CompletedProcess[str]:
    passwd = Path("/etc/passwd").read_text()
    if f'meta skuid "{USER}"' not in path.read_text() or passwd.startswith(f"{USER}:") or f"\n{USER}:" in passwd:
        return subprocess.run([*(["unshare", "--net"] if unshare else []), "nft", "-c", "-f", str(path)],
                              capture_output=True, text=True)
    fake = path.with_name(path.name + ".passwd")
    fake.write_text(passwd + f"{USER}:x:999:999::{STATE}:/usr/sbin/nologin\n")
    return subprocess.run(["unshare", "--net", "--mount", "sh", "-c",
                           'mount --bind "$1" /etc/passwd && exec nft -c -f "$2"', "sh", str(fake), str(path)],
                          capture_output=True, text=True)
