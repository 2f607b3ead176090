"""How many requests the gateway holds for one wake of a sleeping host (issue 13 item 7:
10 concurrent requests during a wake, 10 answers): ``hosts.<h>.sleep.max_held_requests``
in the inventory (default 64), validated, carried to the gateway policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import InventoryError, load_inventory

SLEEPER = "windows-gpu"  # inventory/example.yml's sleeping box


def test_default_and_set_bound_reach_the_gateway_policy(write_inventory: Callable[..., Path]) -> None:
    cfg = gateway_config_from_inventory(load_inventory(write_inventory(lambda _d: None)), resolve=lambda ref: ref)
    assert cfg.upstreams[SLEEPER].sleep.max_waiters == 64

    def change(data: dict[str, Any]) -> None:
        data["hosts"][SLEEPER]["sleep"]["max_held_requests"] = 12

    inv = load_inventory(write_inventory(change))
    assert inv.hosts[SLEEPER].sleep.max_held_requests == 12
    cfg = gateway_config_from_inventory(inv, resolve=lambda ref: ref)
    assert cfg.upstreams[SLEEPER].sleep.max_waiters == 12


@pytest.mark.parametrize(("key", "bad"), [
    *(("max_held_requests", b) for b in (0, -3, 5000, "many")),
    *(("connect_s", b) for b in (0, -1, 61, "soon")),  # the sleeper's connect timeout (0-60 s)
])
def test_a_bad_bound_names_file_line_and_path(write_inventory: Callable[..., Path], key: str, bad: object) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"][SLEEPER]["sleep"][key] = bad

    path = write_inventory(change)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert any(line.startswith(f"{path}:") and f"hosts.{SLEEPER}.sleep.{key}" in line
               for line in caught.value.lines), caught.value.lines
