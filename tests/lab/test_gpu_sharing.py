"""Lab: the deployed gateway knows who shares which card, as `hearth plan` places them
(issue 21.4). Read-only: one ``GET /admin/upstreams`` on the gateway host; nothing to put back.

Everything comes from the inventory under test: its VRAM plan (the planner's own output)
and the upstream names the gateway gives its serves.
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import upstream_name
from hearth.inventory import load_inventory
from hearth.plan import gpu_plans

from .admin_api import admin

pytestmark = pytest.mark.lab


def test_the_gateway_puts_each_upstream_on_the_card_the_plan_does(lab: Any) -> None:
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    expected: dict[str, set[str]] = {}
    for plan in gpu_plans(inv):
        serves = inv.hosts[plan.host].serves
        for model in plan.models:
            index = next(i for i, s in enumerate(serves) if s.name == model.serve and s.gpu == plan.index)
            expected.setdefault(f"{plan.host}/gpu{plan.index}", set()).add(
                upstream_name(plan.host, index, len(serves)))
    if not expected:
        pytest.skip("no served model on a GPU in this inventory")
    answer = admin(lab.host(inv.gateway.host), inv, "/admin/upstreams")
    assert {card: set(g["upstreams"]) for card, g in answer["gpus"].items()} == expected
    rows = {u["name"]: u for u in answer["upstreams"]}
    for card, names in expected.items():
        g = answer["gpus"][card]
        assert set(g["holding"]) <= names, card
        for name in names:
            assert rows[name]["gpu"] == card and set(rows[name]["shares_gpu_with"]) == names - {name}
            if rows[name]["engine"] == "vllm" and rows[name]["state"] == "healthy":
                assert name in g["holding"], f"{name}: a running vLLM holds its share of {card}"
