#!/usr/bin/python3
"""hearth-tunnel: run one SSH tunnel to a Windows box; name the box when its key is refused.

Installed by hearth (roles/gateway/tunnels.py) as /usr/local/libexec/hearth-tunnel and
run by hearth-tunnel-<host>.service:

    hearth-tunnel HOST KNOWN_HOSTS -- ssh -N ... -o HostKeyAlias=HOST ... ADDRESS

ssh's own output passes through unchanged (to the journal). When ssh refuses the
box's host key -- changed (a Windows feature update resets it, seed 000) or not
recorded -- this prints one line naming the host with the known and the offered
fingerprints and exits 78, which the unit does not restart
(RestartPreventExitStatus): a changed key is never retried in silence and never
accepted; ``hearth hostkey accept`` on the deploying machine and a deploy are the
way back. Any other failure (a sleeping box) exits with ssh's code and is restarted.
Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import signal
import subprocess
import sys

HOSTKEY_EXIT = 78
CHANGED = "REMOTE HOST IDENTIFICATION HAS CHANGED"
UNKNOWN = re.compile(r"No \S+ host key is known for")
REFUSED = "Host key verification failed"
OFFERED = re.compile(r"(SHA256:[A-Za-z0-9+/]{43})")


def known_fingerprints(path: str, host: str) -> list[str]:
    """'type SHA256:...' for each key recorded for ``host`` in ``path``."""
    found = []
    try:
        with open(path) as lines:
            for line in lines:
                fields = line.split()
                if len(fields) >= 3 and not fields[0].startswith("#") and host in fields[0].split(","):
                    digest = hashlib.sha256(base64.b64decode(fields[2])).digest()
                    found.append(f"{fields[1]} SHA256:" + base64.b64encode(digest).decode().rstrip("="))
    except OSError as exc:
        found.append(f"(cannot read {path}: {exc})")
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: hearth-tunnel HOST KNOWN_HOSTS -- ssh ...", file=sys.stderr)
        return 2
    host, known_hosts, command = argv[0], argv[1], argv[3:]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    changed = unknown = refused = False
    offered = ""
    assert proc.stderr is not None
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        changed = changed or CHANGED in line
        unknown = unknown or bool(UNKNOWN.search(line))
        refused = refused or REFUSED in line
        match = OFFERED.search(line)
        if match and not offered:
            offered = match.group(1)
    code = proc.wait()
    if refused or changed or unknown:
        known = ", ".join(known_fingerprints(known_hosts, host)) or "none"
        what = "changed" if changed else "is not recorded" if unknown else "was refused"
        print(f"hearth-tunnel: the SSH host key of {host} {what}: known {known} ({known_hosts}), "
              f"offered {offered or 'see above'}. Strict host-key checking refuses it; the tunnel stays "
              f"down (no retry). If you expect the change (a Windows feature update resets the key), "
              f"run on the deploying machine: hearth hostkey accept INVENTORY {host}, then the deploy",
              file=sys.stderr, flush=True)
        return HOSTKEY_EXIT
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
