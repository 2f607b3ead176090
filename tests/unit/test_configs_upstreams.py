"""Which upstreams the deploy asks from the gateway host (roles/upstreams): those hearth does not install."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.configs import upstreams
from hearth.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


def test_example_checks_lm_studio_only() -> None:
    inv = load_inventory(REPO / "inventory" / "example.yml")
    checks = {c.label: c for c in upstreams.checks(inv)}
    # LM Studio on the Windows box; Ollama on the sleeping Windows box is the windows role's
    assert set(checks) == {"mouth/gemma-4-31b"}
    assert checks["mouth/gemma-4-31b"].base_url == "http://10.77.0.50:1234"
    assert all(c.serve.engine != "vllm" for c in checks.values())


def test_lab_checks_only_the_box_it_does_not_manage() -> None:
    inv = load_inventory(REPO / "inventory" / "lab.yml")  # every other upstream is installed by hearth
    assert [c.host for c in upstreams.checks(inv)] == [n for n, h in inv.hosts.items() if not h.managed] != []


def test_lab2_checks_its_openai_server() -> None:
    (check,) = upstreams.checks(load_inventory(REPO / "inventory" / "lab2.yml"))
    assert (check.host, check.serve.engine, check.base_url) == ("den-pi", "openai", "http://10.78.0.5:8080")


def test_a_v1_suffix_is_dropped(write_inventory: Callable[..., Path]) -> None:
    def v1(data: dict[str, Any]) -> None:
        data["hosts"]["mouth"]["serves"][0]["base_url"] = "http://10.77.0.50:1234/v1/"

    inv = load_inventory(write_inventory(v1))
    assert next(c for c in upstreams.checks(inv) if c.host == "mouth").base_url == "http://10.77.0.50:1234"


def test_a_tunneled_box_is_asked_at_the_tunnels_local_end(write_inventory: Callable[..., Path]) -> None:
    from hearth.configs.tunnel import local_url

    def tunnel(data: dict[str, Any]) -> None:
        data["hosts"]["mouth"]["ssh_user"] = "admin"
        data["hosts"]["mouth"].setdefault("windows", {})["reach"] = "ssh_tunnel"

    inv = load_inventory(write_inventory(tunnel))
    check = next(c for c in upstreams.checks(inv) if c.host == "mouth")
    assert check.base_url == local_url(inv, "mouth", 1234) and check.base_url.startswith("http://127.0.0.1:")
