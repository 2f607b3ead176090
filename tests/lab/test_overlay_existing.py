"""Lab: `overlay.kind: existing` (e.g. Tailscale) — the overlay role only verifies.

The lab's WireGuard interface stands in for an overlay hearth does not manage: an
inventory that declares it `existing` must pass the check and change nothing; one
that names an interface the host lacks must fail, saying so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.lab import cycle

pytestmark = pytest.mark.lab


def run_overlay_role(lab: Any, tmp_path: Path, interface: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    data = yaml.safe_load(lab.inventory.read_text())
    data["overlay"].update({"kind": "existing", "interface": interface})
    inventory = tmp_path / "existing.yml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    target = next(m.name for m in lab.spec.machines if not m.sleeps)
    proc = cycle.run_pyinfra(cycle.pyinfra_inventory_for(inventory), cycle.REPO / "roles/overlay/main.py",
                             limit=target, json=True, timeout=300)
    return proc, target


def test_existing_overlay_is_verified_and_nothing_changes(lab: Any, tmp_path: Path) -> None:
    interface = yaml.safe_load(lab.inventory.read_text())["overlay"].get("interface", "wg0")
    proc, _ = run_overlay_role(lab, tmp_path, interface)  # the interface the lab's overlay really has
    assert proc.returncode == 0, cycle.error_excerpt(proc.stderr)
    totals, failed, changed = cycle.parse_results(proc.stdout)
    assert not failed, failed
    assert totals["success"] == 0, changed


def test_existing_overlay_that_is_not_up_fails_clearly(lab: Any, tmp_path: Path) -> None:
    proc, target = run_overlay_role(lab, tmp_path, "tailscale0")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0  # the only host failed: pyinfra stops ("No hosts remaining")
    assert f"[{target}]" in output
    assert "overlay interface tailscale0 does not exist or has no IPv4 address" in output
