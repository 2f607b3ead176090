"""The base, overlay and firewall roles planned by pyinfra against stand-in facts
(no host is connected to): what a fresh host's plan contains.

Every fact answers what a fresh Debian 12 host would (nothing installed, no files),
so the plan shows the steps a first run takes. Issue 9 item 7: a role that installs
packages refreshes the apt lists first (the lab image hid that overlay and firewall
did not, its packages being pre-baked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyinfra.local
import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.host import Host
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_config, ctx_host, ctx_state

from hearth.configs.base import DEBIAN_12
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.inventory.groups import build_groups

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab.yml"
FRESH: dict[str, Any] = {"DebPackages": {}, "LinuxDistribution": DEBIAN_12, "PythonVersion": (3, 11, 2),
                         "SshClientAddress": "192.168.77.1", "OtherFirewalls": [], "KernelWireGuard": False,
                         "PathExists": False, "BootFileIsHearths": False, "Os": "Linux",
                         "Which": "/usr/sbin/useradd"}


def include(path: str) -> None:
    """pyinfra's local.include without pyinfra_cli (which gevent-patches the test process)."""
    from pyinfra import host

    with host.deploy(path, None, None, in_deploy=False):
        exec(compile((REPO / path).read_text(), str(REPO / path), "exec"), {"__file__": str(REPO / path)})


def plan(monkeypatch: pytest.MonkeyPatch, roles: list[str], facts: dict[str, Any],
         asked: list[tuple[str, str]] | None = None) -> dict[str, list[str]]:
    """{host: [step names]} of ``roles`` for the lab inventory's Linux hosts; ``asked``
    collects (host, fact name) for every fact the roles' own code reads (not an operation's)."""
    def get_fact(self: Host, cls: type, *args: Any, **kwargs: Any) -> Any:
        if asked is not None and not self.in_op:
            asked.append((self.name, cls.__name__))
        if cls.__name__ in facts:
            return facts[cls.__name__]
        return cls().default() if hasattr(cls, "default") else None

    monkeypatch.setattr(Host, "get_fact", get_fact)
    monkeypatch.setattr(Host, "connect", lambda *a, **k: pytest.fail("a test must not connect to a host"))
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(pyinfra.local, "include", lambda filename, data=None: include(filename))
    inv = load_inventory(LAB, group_defaults())
    groups = build_groups(inv, LAB)
    inventory = Inventory((groups["linux"], {}), **{g: ([n for n, _ in e], {}) for g, e in groups.items()})
    state = State(inventory, Config())
    state.cwd = str(REPO)
    state.set_stage(StateStage.Prepare)
    with ctx_state.use(state):
        for host in inventory:
            with ctx_config.use(state.config.copy()), ctx_host.use(host):
                for role in roles:
                    include(f"roles/{role}/main.py")
    out: dict[str, list[str]] = {}
    for host in inventory:
        out[host.name] = [state.get_op_data_for_host(host, h).global_arguments["name"]
                          for h in state.get_op_order() if h in state.ops[host]]
    return out


@pytest.mark.parametrize("role,package,step", [("overlay", "wireguard-tools", "WireGuard packages"),
                                               ("firewall", "nftables", "nftables")])
def test_a_role_that_installs_refreshes_the_apt_lists_first(monkeypatch: pytest.MonkeyPatch, role: str,
                                                           package: str, step: str) -> None:
    for host, steps in plan(monkeypatch, [role], FRESH).items():
        refresh = [i for i, s in enumerate(steps) if s.startswith("Refresh apt lists") and package in s]
        install = [i for i, s in enumerate(steps) if s.startswith(step)]
        assert refresh and install and refresh[0] < install[0], (host, steps)


def test_a_fresh_host_gets_one_refresh_before_its_first_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several roles each missing packages: one ``apt-get update`` per host, first; a later
    role's packages are installed from the lists that refresh fetched."""
    for host, steps in plan(monkeypatch, ["overlay", "firewall", "wol"], FRESH).items():
        refreshes = [i for i, s in enumerate(steps) if s.startswith("Refresh apt lists")]
        installs = [i for i, s in enumerate(steps) if s.startswith(("WireGuard packages", "nftables"))]
        assert len(refreshes) == 1 and len(installs) >= 2 and refreshes[0] < installs[0], (host, steps)
    # a second deploy (its own pyinfra state) decides afresh
    assert all(any(s.startswith("Refresh apt lists") for s in steps)
               for steps in plan(monkeypatch, ["firewall"], FRESH).values())


def test_the_installed_packages_are_read_once_per_host_while_the_roles_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every role asks which packages are installed; before any operation runs the answer
    cannot change, so the roles' code reads it once per host (a ``dpkg -l`` costs 0.2-0.6 s
    on an emulated machine; each apt.packages operation still reads its own when it
    runs), and a second deploy reads it afresh."""
    for _ in range(2):
        asked: list[tuple[str, str]] = []
        steps = plan(monkeypatch, ["overlay", "firewall", "wol"], FRESH, asked)
        for host, names in steps.items():  # each role installs packages of its own
            installs = sum(s.startswith(("WireGuard packages", "nftables", "ethtool")) for s in names)
            assert installs >= 2 and asked.count((host, "DebPackages")) == 1, (host, installs, asked)


def test_nothing_refreshed_when_everything_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {p: ["1"] for p in ("wireguard-tools", "wireguard-go", "nftables")}
    for host, steps in plan(monkeypatch, ["overlay", "firewall"], {**FRESH, "DebPackages": installed}).items():
        assert not [s for s in steps if s.startswith("Refresh apt lists")], (host, steps)


def test_firewall_plan_refuses_before_loading_when_the_deploy_would_be_cut_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    steps = plan(monkeypatch, ["firewall"], {**FRESH, "SshClientAddress": "203.0.113.9"})
    for host, names in steps.items():
        guard = next(i for i, s in enumerate(names) if s.startswith("The deploy's own address (203.0.113.9)"))
        load = next(i for i, s in enumerate(names) if s.startswith("Firewall ruleset"))
        assert guard < load, (host, names)
