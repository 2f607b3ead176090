"""`make lab`'s banner says which upstreams the gateway reports usable (issue 11 item 6)."""

from __future__ import annotations

from pathlib import Path

from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab.gateway_check import upstream_lines

LAB = Path(__file__).resolve().parents[2] / "inventory" / "lab.yml"


def test_usable_and_not_yet_usable_upstreams_are_named() -> None:
    inv = load_inventory(LAB, group_defaults())
    lines = upstream_lines(inv, ["lab-ollama", "lab-vllm-0", "lab-vllm-1"])  # lab-vllm serves two models
    assert lines[0] == "upstreams usable: lab-ollama, lab-vllm-0, lab-vllm-1"
    (rest,) = lines[1:]
    assert rest.startswith("not usable now: lab-nas (")  # the LAN box hearth does not run


def test_no_list_without_the_admin_answer() -> None:
    inv = load_inventory(LAB, group_defaults())
    assert upstream_lines(inv, None) == ["upstreams: not shown (the gateway gave no list to the admin token)"]
    assert upstream_lines(inv, [])[0] == "upstreams usable: none"
