"""Role firewall: one nftables table per host, pinned to the overlay.

The ruleset comes from hearth.configs.firewall; the kernel checks it
(`nft -c -f`) before it replaces /etc/hearth/nftables.conf, and it is loaded in
one transaction. A rejected ruleset changes nothing, so SSH (the first rule)
stays. Refused before anything changes: ufw or firewalld in charge of the host,
or a ruleset that would drop the deploy's own SSH address. At boot
hearth-firewall.service loads the table; stopping it deletes only that table.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd

from hearth.configs import firewall as configs
from hearth.configs import gateway
from hearth.facts.network import IpAddresses, lan_ipv6_prefixes
from hearth.facts.nftables import BootFileIsHearths
from hearth.facts.system import SshClientAddress
from hearth.inventory import load_cached
from hearth.operations import accounts, config_files, nftables, paths, services
from hearth.operations.apt import packages_installed

LEGACY_NOTE = ("# hearth's firewall moved to /etc/hearth/nftables.conf, loaded by hearth-firewall.service\n"
               "# (this file is nftables.service's; hearth no longer uses it).\n")


@deploy("firewall")
def apply_firewall() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    facts: dict[str, list[str]] = {}
    if inv.gateway is not None and inv.gateway.host == name:  # the gateway's egress closes the LAN's IPv6
        facts["lan_ipv6"] = lan_ipv6_prefixes(host.get_fact(IpAddresses), str(inv.hosts[name].address))
    rules, unit = configs.host_files(inv, name, facts)

    nftables.no_other_firewall(name="No ufw or firewalld in charge (hearth would fight them)")
    client = host.get_fact(SshClientAddress, _sudo=False)
    nftables.keeps_session(name=f"The deploy's own address ({client or 'not over SSH'}) stays allowed on SSH",
                           problem=configs.unprotected_source(inv, client) if client else None)
    packages_installed("nftables", ["nftables"])
    if rules.context["output"]:  # the gateway host: its output chain names the gateway's user (nft needs it)
        gateway_user = rules.context["output"]["user"]
        accounts.group(name=f"Group {gateway_user} (the gateway's egress rules name it)", group=gateway_user,
                       system=True)
        accounts.user(name=f"User {gateway_user} (system, no login; the gateway role uses it)", user=gateway_user,
                      group=gateway_user, system=True, home=gateway.STATE, shell="/usr/sbin/nologin")
    paths.directory(name="/etc/hearth", path="/etc/hearth", mode="0755", user="root", group="root")
    nftables.ruleset(name="Firewall ruleset (checked by nft -c, loaded atomically)", content=rules.render(),
                     dest=rules.dest, family=configs.FAMILY, table=configs.TABLE, stamp=rules.context["stamp"])

    unit_op = config_files.put(name="hearth-firewall.service (boot load; stop deletes only table inet hearth)",
                               src=StringIO(unit.render()), dest=unit.dest, mode=unit.mode)
    systemd.daemon_reload(name="systemd daemon-reload (hearth-firewall unit changed)", _if=unit_op.did_change)
    # Not started here (that would load the same file again): the ruleset above is live.
    services.service(name="hearth-firewall loads the table at boot", service="hearth-firewall.service",
                     enabled=True, running=None)
    if host.get_fact(BootFileIsHearths, path=configs.LEGACY_RULESET):
        # An older hearth put its table in Debian's file and enabled nftables.service,
        # whose stop flushes every table. Disabled (never stopped: that would flush now).
        config_files.put(name=f"{configs.LEGACY_RULESET} no longer holds hearth's table", src=StringIO(LEGACY_NOTE),
                         dest=configs.LEGACY_RULESET, mode="0644")
        services.service(name="nftables.service no longer loads hearth's table at boot", service="nftables",
                         enabled=False, running=None)


apply_firewall()
