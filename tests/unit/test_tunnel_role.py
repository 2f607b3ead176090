"""roles/gateway/tunnels.py planned by pyinfra against fake facts: no host is connected to.

The gateway host of an inventory whose 3060 is reached by SSH tunnel, first bare (the
deploy has work on every step), then in the state that first deploy leaves (a second
deploy plans zero changes); and the same host once the inventory no longer tunnels
(the unit is stopped and removed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import tunnel
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from tests.unit.role_plan import Steps, account_of, directory_listing, plan_roles
from tests.unit.test_tunnel import tunneled

REPO = Path(__file__).resolve().parents[2]
GATEWAY = "k3master"
UNIT = f"{tunnel.UNIT_DIR}/{tunnel.unit_name('windows-gpu')}"
RUNNER_SOURCE = REPO / "templates" / "gateway" / "hearth-tunnel-run.py"


def converged(inv: Any) -> dict[str, Any]:
    """What the gateway host reports after the first deploy."""
    contents = {tunnel.KNOWN_HOSTS: tunnel.known_hosts(inv).render(), UNIT: tunnel.unit(inv, "windows-gpu").render(),
                tunnel.RUNNER: RUNNER_SOURCE.read_text()}
    user = tunnel.USER
    return {
        "units": [UNIT],
        "packages": {"openssh-client": ["1:9.2p1-2+deb12u7"]},
        "groups": [user],
        "users": {user: {"home": tunnel.HOME, "shell": "/usr/sbin/nologin", "group": user, "groups": [],
                         "comment": None, "uid": 998, "gid": 998}},
        "dirs": {tunnel.HOME: (user, user, 700), tunnel.ETC: ("root", "root", 755),
                 "/usr/local/libexec": ("root", "root", 755), tunnel.UNIT_DIR: ("root", "root", 755)},
        "files": {tunnel.KEY: (user, user, 600), f"{tunnel.KEY}.pub": (user, user, 644),
                  tunnel.KNOWN_HOSTS: ("root", "root", 644), tunnel.RUNNER: ("root", "root", 755),
                  UNIT: ("root", "root", 644)},
        "sha1": {path: hashlib.sha1(text.encode()).hexdigest() for path, text in contents.items()},
        "running": {tunnel.unit_name("windows-gpu"): True},
    }


def bare(inv: Any) -> dict[str, Any]:
    return {"units": [], "packages": {}, "groups": [], "users": {}, "dirs": {}, "files": {}, "sha1": {}, "running": {}}


def answer(box: dict[str, Any], cls: type, kwargs: dict[str, Any]) -> Any:
    name = cls.__name__
    if name == "Os":
        return "Linux"
    if name == "Which":
        return f"/usr/sbin/{kwargs['command']}"
    if name == "Link":
        return None
    if name == "TmpDir":
        return "/tmp"
    if name == "FindFiles":
        return box["units"]
    if name == "DebPackages":
        return box["packages"]
    if name == "Groups":
        return box["groups"]
    if name == "Users":
        return box["users"]
    if name == "Account":
        return account_of(box["users"], kwargs["user"])
    if name == "Home":
        return box["users"].get(kwargs["user"], {}).get("home")
    if name == "DirectoryListing":
        return directory_listing(box["files"], box["sha1"], kwargs["path"], box["dirs"])
    if name in ("File", "Directory"):
        entry = box["files" if name == "File" else "dirs"].get(kwargs["path"])
        return {"user": entry[0], "group": entry[1], "mode": entry[2]} if entry else None
    if name == "Sha1File":
        return box["sha1"].get(kwargs["path"])
    if name in ("SystemdStatus", "SystemdEnabled"):
        return box["running"]
    raise AssertionError(f"unexpected fact {name} {kwargs}")


def plan(monkeypatch: pytest.MonkeyPatch, path: Path, state_of: Callable[[Any], dict[str, Any]]) -> Steps:
    inv = load_inventory(path, group_defaults())
    box = state_of(inv)
    return plan_roles(monkeypatch, inv, path, ["roles/gateway/tunnels.py"], [GATEWAY],
                      lambda host, cls, kwargs: answer(box, cls, kwargs))[GATEWAY]


def test_first_deploy_sets_up_the_tunnel_and_the_second_changes_nothing(
        monkeypatch: pytest.MonkeyPatch, write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    path = write_inventory(tunneled(tmp_path / "known_hosts"))
    first = dict(plan(monkeypatch, path, bare))
    for step in ("OpenSSH client", "User hearth-tunnel (system, no login)", "Tunnel key pair (made on this host)",
                 "Tunnel known_hosts (the recorded host keys)", "Unit hearth-tunnel-windows-gpu.service",
                 "Reload systemd (tunnel units changed)", "hearth-tunnel-windows-gpu.service enabled and running"):
        assert first[step] == 1, (step, first)
    second = plan(monkeypatch, path, converged)
    assert [step for step, runs in second if runs] == [], second
    assert len(second) >= 12


def test_a_box_no_longer_tunneled_loses_its_unit(
        monkeypatch: pytest.MonkeyPatch, write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    tunneled_inv = load_inventory(write_inventory(tunneled(tmp_path / "known_hosts")), group_defaults())
    left = converged(tunneled_inv)  # the box as the tunnel left it
    steps = plan(monkeypatch, write_inventory(), lambda inv: left)
    assert [step for step, runs in steps if runs] == [
        "Stop hearth-tunnel-windows-gpu.service (no longer reach ssh_tunnel)",
        "Remove hearth-tunnel-windows-gpu.service", "Reload systemd (tunnel units removed)"]
    # nothing tunneled, nothing left: nothing to do (every lab deploy takes this path)
    assert [step for step, runs in plan(monkeypatch, write_inventory(), bare) if runs] == []


def test_an_accepted_new_host_key_restarts_the_tunnel(
        monkeypatch: pytest.MonkeyPatch, write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    """`hearth hostkey accept` wrote the box's new key on the deploying machine: the deploy
    rewrites known_hosts and restarts the unit (which had stopped on the refused key)."""
    path = write_inventory(tunneled(tmp_path / "known_hosts"))

    def before_accept(inv: Any) -> dict[str, Any]:
        box = converged(inv)
        box["sha1"][tunnel.KNOWN_HOSTS] = hashlib.sha1(b"windows-gpu ssh-ed25519 OLDKEY\n").hexdigest()
        box["running"] = {tunnel.unit_name("windows-gpu"): False}  # failed: exit 78, not restarted
        return box

    assert [step for step, runs in plan(monkeypatch, path, before_accept) if runs] == [
        "Tunnel known_hosts (the recorded host keys)", "hearth-tunnel-windows-gpu.service enabled and running",
        "Restart hearth-tunnel-windows-gpu.service (unit, key, known_hosts or runner changed)"]
