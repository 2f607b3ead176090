"""Plan hearth roles with pyinfra against fake facts: no host is ever connected to.

``plan_roles`` builds pyinfra's inventory from a hearth inventory (as deploy.py's
groups do), answers every fact from a model of the hosts, runs the role files for the
chosen hosts in pyinfra's prepare stage, and returns each host's steps in order with
how many commands each would run (``_if`` conditions decided from the earlier steps'
outcomes, as pyinfra decides them while executing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyinfra.local
import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.host import Host
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_config, ctx_host, ctx_state

from hearth.inventory.groups import build_groups

REPO = Path(__file__).resolve().parents[2]
Steps = list[tuple[str, int]]  # (step name, command count) in plan order
FactAnswer = Callable[[Host, type, dict[str, Any]], Any]  # (host, fact class, its arguments) -> value


def include(path: str) -> None:
    """pyinfra's local.include without importing pyinfra_cli (which monkey-patches the
    whole test process with gevent): run a role file as a deploy file."""
    from pyinfra import host

    with host.deploy(path, None, None, in_deploy=False):
        exec(compile((REPO / path).read_text(), str(REPO / path), "exec"), {"__file__": str(REPO / path)})


def condition(global_arguments: dict[str, Any]) -> bool:
    """An ``_if`` step runs when its condition holds; pyinfra decides that while executing,
    from whether earlier steps changed (recorded by ``plan_roles`` as they would complete)."""
    ifs = global_arguments.get("_if")
    if ifs is None:
        return True
    return all(f() for f in ifs) if isinstance(ifs, list) else bool(ifs())


def plan_roles(monkeypatch: pytest.MonkeyPatch, inv: Any, inv_path: Path, role_files: Iterable[str],
               hosts: Iterable[str], facts: FactAnswer, *, with_windows: bool = False,
               sent: list[str] | None = None) -> dict[str, Steps]:
    """Plan ``role_files`` on ``hosts``: {host: [(step name, command count)]}.

    + facts: answers every ``host.get_fact`` (pyinfra's ``_``-arguments left out)
    + with_windows: pyinfra's inventory holds the Windows hosts and group too (else Linux only)
    + sent: collects every command line a planned step would send
    """
    chosen, role_files = set(hosts), list(role_files)

    def get_fact(self: Host, cls: type, *args: Any, **kwargs: Any) -> Any:
        return facts(self, cls, {k: v for k, v in kwargs.items() if not k.startswith("_")})

    monkeypatch.setattr(Host, "get_fact", get_fact)
    monkeypatch.setattr(Host, "connect", lambda *a, **k: pytest.fail("a test must not connect to a host"))
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(pyinfra.local, "include", lambda filename, data=None: include(filename))
    groups = build_groups(inv, inv_path)
    names = groups["linux"] + (groups["windows"] if with_windows else [])
    inventory = Inventory((names, {}), **{g: ([n for n, _ in entries], {}) for g, entries in groups.items()
                                          if with_windows or g != "windows"})  # fmt: skip
    state = State(inventory, Config())
    state.cwd = str(REPO)
    state.set_stage(StateStage.Prepare)
    planned = [host for host in inventory if host.name in chosen]
    with ctx_state.use(state):
        for host in planned:
            with ctx_config.use(state.config.copy()), ctx_host.use(host):
                for path in role_files:
                    include(path)
    out: dict[str, Steps] = {}
    for host in planned:
        steps = []
        for op_hash in state.get_op_order():
            if op_hash in state.ops[host]:
                data = state.get_op_data_for_host(host, op_hash)
                runs = bool(data.operation_meta._maybe_is_change) and condition(data.global_arguments)
                # Record the outcome as execution would, for the `_if` of later steps
                data.operation_meta.set_complete(True, ["planned"] if runs else [], None)
                steps.append((data.global_arguments["name"], int(runs)))
                if runs and sent is not None:
                    with ctx_state.use(state), ctx_host.use(host):
                        sent.extend(command.get_raw_value() for command in data.command_generator())
        out[host.name] = steps
    return out


def account_of(users: dict[str, dict[str, Any]], user: str) -> dict[str, Any] | None:
    """hearth's ``Account`` fact for ``user`` on a model host whose accounts are given as pyinfra's
    ``Users`` fact: the same account, read alone."""
    entry = users.get(user)
    if entry is None:
        return None
    return {key: entry[key] for key in ("uid", "gid", "home", "shell", "group", "groups")}


def directory_listing(files: dict[str, tuple[str, str, int]], sha1: dict[str, str], directory: str,
                      dirs: dict[str, tuple[str, str, int]] | None = None) -> dict[str, dict[str, Any]]:
    """hearth's ``DirectoryListing`` fact on a model host whose files and directories are given
    as pyinfra's ``File`` / ``Directory`` (user, group, mode) and ``Sha1File`` answers: the same
    entries, read by directory."""
    listing = {}
    for kind, entries in (("file", files), ("directory", dirs or {})):
        for path, (user, group, mode) in entries.items():
            parent, name = path.rstrip("/").rsplit("/", 1)
            if (parent or "/") == directory:
                listing[name] = {"kind": kind, "user": user, "group": group, "mode": mode,
                                 "sha1": sha1.get(path) if kind == "file" else None}
    return listing
