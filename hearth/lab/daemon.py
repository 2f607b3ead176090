"""The lab daemon: power controller, artifact server and apt proxy in one process.

Run by `hearth lab up` as ``python -m hearth.lab.daemon ROOT``; stopped by
`hearth lab down` (SIGTERM). Logs to ``ROOT/daemon.log``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from hearth.lab import aptproxy
from hearth.lab.artifacts import server as artifact_server
from hearth.lab.power import PowerController
from hearth.lab.spec import APT_PROXY_PORT, ARTIFACT_PORT
from hearth.lab.state import load_record


def main(argv: list[str]) -> int:
    """Serve until SIGTERM."""
    root = Path(argv[0])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout
    )
    lab = load_record(root)
    if lab is None:
        print(f"no lab record in {root}", file=sys.stderr)
        return 2
    servers = [
        artifact_server.serve(root / "artifacts", lab.host_ip, ARTIFACT_PORT),
        aptproxy.serve(lab.host_ip, APT_PROXY_PORT),
    ]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    controller = PowerController(root, lab.bridge)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    logging.getLogger("hearth.lab").info("lab daemon ready on %s", lab.host_ip)
    done.wait()
    controller.stopping.set()
    for srv in servers:
        srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
