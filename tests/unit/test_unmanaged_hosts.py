"""Hosts hearth routes to but does not manage (issue 22 item 4): ``managed: false``.

No role and no SSH (never in a pyinfra group); their serves are upstreams: in the
gateway's policy, asked by the deploy's upstream report from the gateway host,
planned on the GPUs the inventory gives, reached on the overlay when the host is a
WireGuard peer (``wireguard_public_key``) and on its LAN address when it is not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.configs import firewall, overlay, unmanaged, upstreams
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import load_inventory
from hearth.inventory.groups import build_groups
from hearth.plan import plan_text

KEY = "y0QwpyBc9hZshgVQ5gZxjBmeD2HaJAnV9sI8obJp/2s="


def _nas(key: str | None = None, engine: str = "lmstudio") -> Callable[[dict[str, Any]], None]:
    """A NAS with an NVIDIA card running LM Studio's server (engine openai, llama.cpp's
    llama-server, names its base_url itself) that hearth does not manage."""
    def change(data: dict[str, Any]) -> None:
        serve = copy.deepcopy(data["hosts"]["mouth"]["serves"][0])
        serve.update(name="phi-3.5-mini", engine=engine, model="phi-3.5-mini", port=8080, slots=1,
                     routes=["nas"])
        data["hosts"]["nas"] = {"address": "192.168.1.77", "overlay_ip": "10.77.0.77", "arch": "amd64",
                                "managed": False, "gpus": [{"model": "RTX 3090", "vram_gb": 24}],
                                "serves": [serve]}
        if key:
            data["hosts"]["nas"]["wireguard_public_key"] = key
    return change


def test_an_unmanaged_box_off_the_overlay_is_an_upstream_on_its_lan_address(
        write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(_nas())
    inv = load_inventory(path)
    assert unmanaged.lan_only(inv, "nas") and unmanaged.upstream_address(inv, "nas") == "192.168.1.77"
    # no role, no SSH: in no pyinfra group, no files, no overlay peer
    assert all("nas" not in [n for n, _ in entries] for entries in build_groups(inv, path).values())
    assert firewall.host_files(inv, "nas") == [] and overlay.host_files(inv, "nas") == []
    assert "nas" not in overlay.members(inv)
    assert "# nas" not in overlay.wg_config(inv, "k3master", {}).render()
    # the gateway routes to it, health-probes it like any upstream, on the LAN address
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    (up,) = [u for u in config.upstreams.values() if u.host == "nas"]
    assert up.base_url == "http://192.168.1.77:8080" and up.engine == "lmstudio"
    assert [config.upstreams[u].host for u in config.routes["nas"].upstreams] == ["nas"]
    # the deploy's upstream report asks it there, from the gateway host
    (check,) = [c for c in upstreams.checks(inv) if c.host == "nas"]
    assert check.base_url == "http://192.168.1.77:8080"
    text = plan_text(inv)
    assert ("routed to, not managed: nas at 192.168.1.77 (LAN, not on the overlay): "
            "phi-3.5-mini (lmstudio, port 8080)") in text
    assert "managed: false, not deployed" in next(ln for ln in text.splitlines() if ln.startswith("nas "))


def test_an_unmanaged_box_with_its_wireguard_key_is_reached_on_the_overlay(
        write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(_nas(KEY.replace("y0Q", "a1B"))))
    assert not unmanaged.lan_only(inv, "nas") and unmanaged.upstream_address(inv, "nas") == "10.77.0.77"
    assert "nas" in overlay.members(inv)
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    assert [u.base_url for u in config.upstreams.values() if u.host == "nas"] == ["http://10.77.0.77:8080"]
    assert "nas at 10.77.0.77 (overlay)" in plan_text(inv)


def test_managed_hosts_are_still_reached_on_the_overlay(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory())
    for name, host in inv.hosts.items():
        assert unmanaged.upstream_address(inv, name) == str(host.overlay_ip)


def test_llama_server_is_an_openai_upstream_at_the_base_url_the_inventory_gives(
        write_inventory: Callable[..., Path]) -> None:
    def llama(data: dict[str, Any]) -> None:
        _nas(engine="openai")(data)
        data["hosts"]["nas"]["serves"][0]["base_url"] = "http://192.168.1.77:8080/v1"

    inv = load_inventory(write_inventory(llama))
    config = gateway_config_from_inventory(inv, resolve=lambda ref: f"secret-{ref}")
    assert [u.base_url for u in config.upstreams.values() if u.host == "nas"] == ["http://192.168.1.77:8080/v1"]
    (check,) = [c for c in upstreams.checks(inv) if c.host == "nas"]
    assert check.base_url == "http://192.168.1.77:8080"


def test_the_plan_budgets_an_unmanaged_boxs_gpu(write_inventory: Callable[..., Path]) -> None:
    text = plan_text(load_inventory(write_inventory(_nas())))
    assert any("nas" in ln and "RTX 3090" in ln for ln in text.splitlines()), text
