"""UnitFileStates: the fact's command run for real by this machine's systemctl on a root of
its own (``systemctl --root``, no running systemd needed), and its output read back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hearth.facts.systemd import UnitFileStates
from hearth.operations.services import enabled_as_wanted

pytestmark = pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl missing")

UNITS = {
    "a.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=aa.service\n",
    "resume.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=sleep.target\n",  # never loaded
    "wq@.service": "[Service]\nExecStart=/bin/true %i\n[Install]\nWantedBy=multi-user.target\n",
    "static.service": "[Service]\nExecStart=/bin/true\n",
    "off.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
}


def systemctl(root: Path, *args: str) -> str:
    return subprocess.run(["systemctl", f"--root={root}", *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout  # fmt: skip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    for name, text in UNITS.items():
        (units / name).write_text(text)
    (units / "masked.service").symlink_to("/dev/null")
    systemctl(tmp_path, "enable", "a.service", "resume.service", "wq@wg0.service")
    return tmp_path


def test_every_unit_file_with_its_state_loaded_or_not(root: Path) -> None:
    command = UnitFileStates().command().replace("systemctl ", f"systemctl --root={root} ", 1)
    out = subprocess.run(command, shell=True, capture_output=True, text=True, check=True, timeout=60).stdout
    states = UnitFileStates().process(out.splitlines())
    assert states == {"a.service": "enabled", "aa.service": "alias", "masked.service": "masked",
                      "off.service": "disabled", "resume.service": "enabled", "static.service": "static",
                      "wq@.service": "indirect"}  # fmt: skip
    # what hearth's services.service reads from it
    assert enabled_as_wanted(states, "resume.service", True)  # enabled, never loaded
    assert enabled_as_wanted(states, "static.service", True) and enabled_as_wanted(states, "off.service", False)
    assert enabled_as_wanted(states, "gone.service", False) and not enabled_as_wanted(states, "gone.service", True)
    # an instance is never listed: not known either way, so pyinfra's own operation reads it
    assert not enabled_as_wanted(states, "wq@wg0.service", True)
    assert not enabled_as_wanted(states, "wq@wg0.service", False)


def test_nothing_installed_reads_as_no_unit_file() -> None:
    assert UnitFileStates().process([]) == {}
