"""A minimal QMP client: one short connection per command to a VM's QMP socket.

QMP (the QEMU Machine Protocol) is line-delimited JSON: QEMU greets, the client
sends ``qmp_capabilities``, then commands; asynchronous events may arrive between
them and are skipped here.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from hearth.lab.sh import LabError


def command(sock: Path, execute: str, arguments: dict[str, Any] | None = None,
            *, timeout: float = 5.0) -> Any:  # fmt: skip
    """Run one QMP command on ``sock``; its ``return`` value (LabError on error)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(sock))
        except OSError as exc:
            raise LabError(f"QMP socket {sock}: {exc}") from exc
        f = s.makefile("rwb")
        _reply(f, greeting=True)
        for name, args in (("qmp_capabilities", None), (execute, arguments)):
            msg: dict[str, Any] = {"execute": name}
            if args:
                msg["arguments"] = args
            f.write(json.dumps(msg).encode() + b"\n")
            f.flush()
            result = _reply(f)
        return result


def _reply(f: Any, *, greeting: bool = False) -> Any:
    while True:
        line = f.readline()
        if not line:
            raise LabError("QMP: connection closed by QEMU")
        msg = json.loads(line)
        if greeting and "QMP" in msg:
            return msg["QMP"]
        if "error" in msg:
            err = msg["error"]
            raise LabError(f"QMP: {err.get('class')}: {err.get('desc')}")
        if "return" in msg:
            return msg["return"]
        # an event ({"event": ...}): not ours, keep reading


def status(sock: Path) -> str:
    """The VM's run state: ``running``, ``suspended`` (S3), ``shutdown``, ``paused``..."""
    return str(command(sock, "query-status")["status"])
