"""Helpers for lab checks that read or drive the deployed gateway's admin API (through
tests/lab/admin_api.py: from the gateway host itself, with the token file the deploy
wrote) and the lab's power state."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.lab.admin_api import admin


def upstream_states(gateway: Any, inv: Any) -> dict[str, str]:
    return {str(u["name"]): str(u["state"]) for u in admin(gateway, inv, "/admin/upstreams")["upstreams"]}


def upstream_row(gateway: Any, inv: Any, upstream: str) -> dict[str, Any]:
    """The gateway's whole view of ``upstream`` (state, last error, probe time...)."""
    return next((u for u in admin(gateway, inv, "/admin/upstreams")["upstreams"] if u["name"] == upstream), {})


def wait_upstream_state(gateway: Any, inv: Any, upstream: str, wanted: str, within_s: float = 60) -> None:
    """Poll the gateway until it reports ``upstream`` in ``wanted`` (bounded); the failure
    shows what the gateway last said about it (its last error says why it changed state)."""
    deadline = time.monotonic() + within_s
    while (row := upstream_row(gateway, inv, upstream)).get("state") != wanted:
        why = {k: row.get(k) for k in ("last_error", "last_error_at", "last_probe_ms", "wake")}
        assert time.monotonic() < deadline, (
            f"the gateway reports {upstream} {row.get('state')}, not {wanted}, after {within_s:.0f}s ({why})")
        time.sleep(0.5)


def magic_packets(mac: str) -> int:
    """Magic packets for ``mac`` the lab's power controller has received so far."""
    from hearth.lab.state import lab_root

    log = Path(lab_root()) / "daemon.log"
    return log.read_text().count(f"magic packet for {mac}") if log.exists() else 0


def restore_awake(gateway: Any, inv: Any, record: Any, machine: Any, upstream: str) -> None:
    """The sleeper on and the gateway knowing it (its admin wake waits for the engine)."""
    from hearth.lab import machine as lab_machine
    from hearth.lab import power_cli

    if lab_machine.power_state(machine) != "on":
        power_cli.wake(record, machine)
    if upstream_states(gateway, inv).get(upstream) != "healthy":
        answer = admin(gateway, inv, f"/admin/wake/{upstream}", "POST", 150)
        assert answer.get("awake"), answer
    wait_upstream_state(gateway, inv, upstream, "healthy")
