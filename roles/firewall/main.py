"""Role firewall: one nftables table per host, pinned to the overlay.

The ruleset comes from hearth.configs.firewall; the kernel checks it
(`nft -c -f`) before it replaces /etc/nftables.conf, and it is loaded in one
transaction. A rejected ruleset changes nothing, so SSH (the first rule) stays.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, systemd

from hearth.configs import firewall as configs
from hearth.inventory import load_cached
from hearth.operations import nftables


@deploy("firewall")
def apply_firewall() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    cf = configs.ruleset(inv, name)
    apt.packages(name="nftables", packages=["nftables"])
    nftables.ruleset(name="Firewall ruleset (checked by nft -c, loaded atomically)", content=cf.render(),
                     dest=cf.dest, family=configs.FAMILY, table=configs.TABLE, stamp=cf.context["stamp"])
    # nftables.service loads /etc/nftables.conf at boot; not started here (that
    # would load the same file again): the ruleset above is already live.
    systemd.service(name="nftables loads the ruleset at boot", service="nftables", enabled=True, running=None)


apply_firewall()
