"""Wake choices in the inventory (issue 13 item 2): routing.routes.<r>.wake is hold,
spill or confirm; validation names file, line and key path for what cannot work; the
gateway policy carries the choice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import InventoryError, load_inventory


def _problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value.lines


@pytest.mark.parametrize("choice", ["hold", "spill", "confirm"])
def test_each_choice_reaches_the_gateway_policy(write_inventory: Callable[..., Path], choice: str) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["coder-local"]["wake"] = choice

    inv = load_inventory(write_inventory(change))
    assert inv.routing is not None and inv.routing.routes["coder-local"].wake == choice
    cfg = gateway_config_from_inventory(inv, resolve=lambda ref: ref)
    assert cfg.routes["coder-local"].wake == choice
    assert cfg.routes["code"].wake == "hold"  # the default


def test_unknown_choice_names_file_line_and_path(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["coder-local"]["wake"] = "later"

    path = write_inventory(change)
    lines = _problems(path)
    assert any(line.startswith(f"{path}:") and "routing.routes.coder-local.wake" in line for line in lines), lines


def test_spill_needs_somewhere_to_spill(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["coder-local"].update(wake="spill", failover=[])

    path = write_inventory(change)
    lines = _problems(path)
    assert any(f"{path}:" in line and "routing.routes.coder-local.wake: spill answers from an awake fallback"
               in line for line in lines), lines


def test_a_choice_on_a_route_that_never_sleeps_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["code"]["wake"] = "confirm"
        data["routing"]["routes"]["reasoning"]["wake"] = "spill"

    lines = _problems(write_inventory(change))
    assert any("routing.routes.code.wake: confirm: no upstream of route code sleeps" in line for line in lines)
    assert any("routing.routes.reasoning.wake: a terminal route never falls back" in line for line in lines)
