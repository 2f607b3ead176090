"""Lab: `hearth wake` brings a sleeping host back before a deploy reaches for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab


def test_hearth_wake_sends_a_magic_packet_and_waits_for_ssh(lab: Any) -> None:
    if not lab.local:
        pytest.skip("puts a lab machine to sleep")
    from hearth.lab import machine as lab_machine
    from hearth.lab import power_cli
    from hearth.lab.state import lab_root, load_record

    record = load_record(lab_root())
    assert record is not None
    sleepers = [m.name for m in lab.spec.machines if m.sleeps]
    if not sleepers:
        pytest.skip("no host in this inventory sleeps (sleep.sleeps)")
    sleeper = sleepers[0]
    power_cli.sleep(record, record.machines[sleeper])
    assert lab_machine.power_state(record.machines[sleeper]) == "asleep"

    hearth = str(Path(sys.executable).with_name("hearth"))
    woke = subprocess.run([hearth, "wake", str(lab.inventory), "--timeout", "60"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert woke.returncode == 0, woke.stdout + woke.stderr
    assert f"{sleeper}: up after" in woke.stdout
    assert lab_machine.power_state(record.machines[sleeper]) == "on"

    again = subprocess.run([hearth, "wake", str(lab.inventory)], capture_output=True, text=True,
                           timeout=60, check=False)
    assert again.returncode == 0 and f"{sleeper}: awake" in again.stdout  # nothing sent to an awake host
