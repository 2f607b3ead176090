"""What the deploy leaves on every host the inventory names (lab or real)."""

from __future__ import annotations

import pytest

from hearth.lab.harness import Lab


def test_second_deploy_changed_nothing(lab: Lab) -> None:
    if lab.result is None:
        pytest.skip("nothing was deployed by this session (--hearth-deploy not given)")
    assert lab.result.converge.totals["hosts"] > 0
    assert lab.result.noop.totals["success"] == 0, lab.result.noop.changed
    assert lab.result.noop.totals["error"] == 0


def test_host_is_reachable_as_the_automation_user_with_sudo(lab: Lab, machine: str) -> None:
    h = lab.host(machine)
    assert h.user().name == lab.spec.ssh_user
    assert h.run("sudo -n true").rc == 0
    assert h.service("ssh").is_running
