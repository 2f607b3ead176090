"""A reboot the deploy triggers and waits for, which only a VM can show (its own kernel).

The NVIDIA role's path (roles/nvidia/driver.py) on a host where the freshly installed
driver cannot be used until a reboot: nouveau is blacklisted, then
``nvidia.reboot_for_driver`` fails the host, naming it and the reason, unless the
inventory says ``allow_reboot: true``; allowed, it reboots the host, pyinfra waits for
SSH to come back and the deploy goes on with the next operation. After the reboot the
blacklist holds: nouveau is not loaded, and a load that honours the blacklist (as
udev's does) leaves it unloaded.

The lab VM has no NVIDIA GPU and no driver (its inventory says
``nvidia_manage_driver: false``, so the real driver's DKMS build under TCG is not run),
so the test puts it in the state a driver install leaves by loading nouveau by hand,
and runs the role's own blacklist file and reboot operation from a deploy file of its
own. hearth sets no kernel command line (the blacklist is a modprobe.d file, read at
every module load), so there is no command line to check after the reboot.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import nvidia as configs
from hearth.lab import cycle, power_cli
from hearth.lab import machine as lab_machine
from hearth.lab.harness import Lab
from hearth.lab.state import lab_root, load_record

pytestmark = pytest.mark.lab

MARKER = "/var/tmp/hearth-test-after-reboot"

# The role's own two steps for this case, then one more so the test sees the deploy go on.
DEPLOY = """\
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server

from hearth.configs import nvidia as configs
from hearth.inventory import load_cached
from hearth.operations import nvidia

inv = load_cached(host.data.hearth_inventory)
cf = configs.nouveau_blacklist()
files.put(name="nouveau blacklisted", src=StringIO(cf.render()), dest=cf.dest, mode=cf.mode)
nvidia.reboot_for_driver(name="Reboot for the driver (only if the inventory allows it)",
                         allow=inv.hosts[host.data.hearth_host].allow_reboot, _serial=True)
server.shell(name="After the reboot", commands=["cat /proc/sys/kernel/random/boot_id > {marker}"])
"""


def _boot_id(h: Any) -> str:
    return str(h.check_output("cat /proc/sys/kernel/random/boot_id"))


def _deploy(lab: Lab, tmp_path: Path, name: str, allow: bool) -> subprocess.CompletedProcess[str]:
    data = copy.deepcopy(yaml.safe_load(lab.inventory.read_text()))
    data["hosts"][name]["allow_reboot"] = allow
    variant = tmp_path / ("allow" if allow else "refuse") / lab.inventory.name
    variant.parent.mkdir(parents=True)
    variant.write_text(yaml.safe_dump(data, sort_keys=False))
    deploy = tmp_path / "reboot_for_driver.py"
    deploy.write_text(DEPLOY.format(marker=MARKER))
    return cycle.run_pyinfra(cycle.pyinfra_inventory_for(variant), deploy, limit=name, timeout=900)


@pytest.fixture
def vm(lab: Lab) -> Any:
    """An awake VM of this lab with nouveau loaded; afterwards the blacklist and marker removed."""
    if not lab.local:
        pytest.skip("reboots a lab machine: only on a local lab")
    names = [m.name for m in lab.spec.machines if m.kind == "vm"]
    if not names:
        pytest.skip("no VM in this lab (hosts.<name>.lab.kind: vm): a container cannot reboot its kernel")
    record = load_record(lab_root())
    assert record is not None
    m = record.machines[names[0]]
    if lab_machine.power_state(m) != "on":
        power_cli.wake(record, m)
    h = lab.host(m.name)
    h.check_output("sudo modprobe nouveau && test -d /sys/module/nouveau")
    yield m.name, h
    h.run(f"sudo rm -f {configs.NOUVEAU_BLACKLIST} {MARKER}")


def test_a_reboot_for_the_driver_happens_only_when_allowed_and_the_deploy_goes_on(
    lab: Lab, vm: Any, tmp_path: Path,
) -> None:
    name, h = vm
    before = _boot_id(h)

    refused = _deploy(lab, tmp_path, name, allow=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said[-2000:]
    assert f"hearth: {name} needs a reboot to use the NVIDIA driver (nouveau" in said, said[-2000:]
    assert "allow_reboot: true" in said
    assert _boot_id(h) == before, "not allowed: no reboot"
    assert h.run(f"test -e {MARKER}").rc != 0, "the host failed: nothing after the reboot step ran"
    assert h.file(configs.NOUVEAU_BLACKLIST).exists  # the step before it did run

    allowed = _deploy(lab, tmp_path, name, allow=True)
    said = allowed.stdout + allowed.stderr
    assert allowed.returncode == 0, said[-3000:]
    after = _boot_id(h)
    assert after != before, "allowed: the host rebooted"
    assert h.check_output(f"cat {MARKER}") == after, "the deploy went on after the host came back"
    assert h.run("test -d /sys/module/nouveau").rc != 0, "nouveau not loaded after the reboot"
    h.run("sudo modprobe -b nouveau")  # a load that honours the blacklist, as udev's does
    assert h.run("test -d /sys/module/nouveau").rc != 0, "the blacklist holds after the reboot"
