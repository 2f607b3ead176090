"""Lab: a policy-only change reloads the gateway (SIGHUP), it does not restart it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import gateway as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle
from tests.lab.test_gateway import client_key, keyword_for_a_deployed_route, request

pytestmark = pytest.mark.lab


def deploy_gateway_host(inventory_yml: Path, host: str) -> list[str]:
    """Deploy only the gateway host; return the operations that changed something."""
    run = cycle.deploy(cycle.pyinfra_inventory_for(inventory_yml), limit=host, timeout=600)
    assert run.ok, run.stderr_tail
    return run.changed


def main_pid(node: Any) -> str:
    return node.check_output("systemctl show -p MainPID --value hearth-gateway")


def test_policy_change_reloads_without_restart(lab: Any, tmp_path: Path) -> None:
    data = yaml.safe_load(lab.inventory.read_text())
    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    gateway_host = inv.gateway.host
    _, route = keyword_for_a_deployed_route(inv)
    bucket = next(b for b, spec in data["routing"]["buckets"].items() if spec["route"] == route)
    keywords = data["routing"]["buckets"][bucket].setdefault("keywords", {})
    if isinstance(keywords, list):
        keywords = data["routing"]["buckets"][bucket]["keywords"] = dict.fromkeys(keywords, 1)
    node = lab.host(gateway_host)
    pid = main_pid(node)
    assert pid != "0"

    keywords["kotlin"] = 2  # a policy-only change
    changed_inventory = tmp_path / "changed.yml"
    changed_inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    changed = deploy_gateway_host(changed_inventory, gateway_host)
    try:
        assert any("Reload gateway" in op for op in changed), changed
        assert not any("Restart gateway" in op for op in changed), changed
        assert main_pid(node) == pid
        with node.sudo():
            assert "kotlin" in node.file(configs.POLICY).content_string
        client = lab.host(next(n for n, h in inv.hosts.items()
                               if n != gateway_host and h.os == "linux" and not h.sleep.sleeps))
        ask = {"model": f"{inv.routing.alias_prefix}/auto", "messages": [{"role": "user", "content": "kotlin"}]}
        _, headers, _ = request(client, inv, "/v1/chat/completions", client_key(inv), ask)
        assert headers["x-hearth-route"] == route  # the reloaded policy is the one serving
    finally:
        restored = deploy_gateway_host(lab.inventory, gateway_host)
    assert any("Reload gateway" in op for op in restored), restored
    assert main_pid(node) == pid
    with node.sudo():
        assert "kotlin" not in node.file(configs.POLICY).content_string
