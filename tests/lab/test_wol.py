"""Lab: Wake-on-LAN on the Linux sleepers' NICs (roles/wol).

The .link file must be the rendered one; whether the NIC itself wakes on a magic
packet is read back with the role's own fact (ethtool). A lab machine's NIC is a
veth, which has no Wake-on-LAN: the fact must say so and the check skips with that
reason, never passes as if the NIC could wake.
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.configs import wol as configs
from hearth.deploy_data import group_defaults
from hearth.facts.wol import ethtool_script, parse_ethtool
from hearth.inventory import load_inventory

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def sleepers(lab: Any) -> tuple[Any, list[str]]:
    inv = load_inventory(lab.inventory, group_defaults())
    names = [name for name in inv.hosts if configs.wakes_by_lan(inv, name)]
    if not names:
        pytest.skip("no Linux host of this inventory sleeps and wakes by LAN")
    return inv, names


def test_link_file_is_the_rendered_one(lab: Any, sleepers: tuple[Any, list[str]]) -> None:
    inv, names = sleepers
    for name in names:
        (link,) = configs.host_files(inv, name)
        assert lab.host(name).file(link.dest).content_string == link.render()


def test_nic_wakes_on_a_magic_packet_or_the_fact_says_why_not(lab: Any, sleepers: tuple[Any, list[str]]) -> None:
    inv, names = sleepers
    unsupported = []
    for name in names:
        node = lab.host(name)
        with node.sudo():
            info = parse_ethtool(node.check_output(ethtool_script(configs.mac(inv, name))).splitlines())
        assert info["interface"], f"{name}: {info['reason']}"  # the inventory's MAC is on the host
        if not info["supported"]:
            assert not info["enabled"] and info["reason"]
            unsupported.append(f"{name}: {info['reason']}")
            continue
        wake = f"{info['interface']} supports {info['supports']} but wakes on {info['wake_on']}"
        assert info["enabled"], f"{name}: {wake}"
    if unsupported:
        pytest.skip("Wake-on-LAN cannot be shown here: " + "; ".join(unsupported))
