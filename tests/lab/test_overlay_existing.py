"""Lab: `overlay.kind: existing` (e.g. Tailscale) — the overlay role only verifies.

The lab's WireGuard interface stands in for an overlay hearth does not manage: an
inventory that declares it `existing` must pass the check and change nothing; one
that names an interface the host lacks must fail, saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.lab import cycle

pytestmark = pytest.mark.lab
OVERLAY_ROLE = cycle.REPO / "roles/overlay/main.py"


def existing_overlay(lab: Any, tmp_path: Path, interface: str) -> tuple[Path, str]:
    """(the pyinfra inventory of the lab's inventory with an ``existing`` overlay on ``interface``,
    an awake host to run the overlay role on)."""
    data = yaml.safe_load(lab.inventory.read_text())
    data["overlay"].update({"kind": "existing", "interface": interface})
    inventory = tmp_path / "existing.yml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    target = next(m.name for m in lab.spec.machines if not m.sleeps)
    return cycle.pyinfra_inventory_for(inventory), target


def test_existing_overlay_is_verified_and_nothing_changes(lab: Any, tmp_path: Path) -> None:
    interface = yaml.safe_load(lab.inventory.read_text())["overlay"].get("interface", "wg0")
    inventory_py, target = existing_overlay(lab, tmp_path, interface)  # the interface the lab's overlay has
    run = cycle.deploy(inventory_py, OVERLAY_ROLE, limit=target, timeout=300)
    assert run.ok, run.stderr_tail
    assert run.totals["success"] == 0, run.changed


def test_existing_overlay_that_is_not_up_fails_clearly(lab: Any, tmp_path: Path) -> None:
    inventory_py, target = existing_overlay(lab, tmp_path, "tailscale0")
    proc = cycle.run_pyinfra(inventory_py, OVERLAY_ROLE, limit=target, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0  # the only host failed: pyinfra stops ("No hosts remaining")
    assert f"[{target}]" in output
    assert "overlay interface tailscale0 does not exist or has no IPv4 address" in output
