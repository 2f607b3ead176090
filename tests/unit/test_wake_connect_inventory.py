"""A sleeper's connect timeout (issue 13: a request right after a self-suspend waited the
policy's 5 s connect timeout before the magic packet): ``hosts.<h>.sleep.connect_s`` in the
inventory (default 1.5 s), validated, carried to the gateway, where it bounds only that
sleeper's connect timeout and only when the upstream sets no ``timeouts.connect_s``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.gateway.state import Policy
from hearth.inventory import load_inventory

SLEEPER = "windows-gpu"  # inventory/example.yml's sleeping box


def _policy(write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None]) -> Policy:
    inv = load_inventory(write_inventory(change))
    return Policy.build(gateway_config_from_inventory(inv, resolve=lambda ref: ref))


def test_a_sleeper_connects_with_its_own_bound_others_with_the_policys(
        write_inventory: Callable[..., Path]) -> None:
    pol = _policy(write_inventory, lambda _d: None)
    sleepers = {n for n, u in pol.cfg.upstreams.items() if u.sleep.sleeps}
    assert sleepers and sleepers != set(pol.cfg.upstreams)
    for name in pol.cfg.upstreams:
        want = 1.5 if name in sleepers else pol.cfg.timeouts.connect_s
        assert pol.timeouts[name].connect_s == want, name


def test_set_in_the_inventory_and_an_upstreams_own_connect_timeout_wins(
        write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"][SLEEPER]["sleep"]["connect_s"] = 0.8

    assert _policy(write_inventory, change).timeouts[SLEEPER].connect_s == 0.8

    def own(data: dict[str, Any]) -> None:
        data["hosts"][SLEEPER]["sleep"]["connect_s"] = 0.8
        data["hosts"][SLEEPER]["timeouts"] = {"connect_s": 3}

    assert _policy(write_inventory, own).timeouts[SLEEPER].connect_s == 3
