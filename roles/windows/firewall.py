"""windows | firewall: Windows Firewall on; SSH from the admin LAN and overlay; model ports overlay-only."""

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import firewall


@deploy("windows firewall")
def apply_firewall() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    firewall.profiles_enabled(name="Windows Firewall on in every profile")
    rules = configs.firewall_rules(inv, name)
    firewall.inbound_rules(
        name="hearth rules: " + "; ".join(f"{r.protocol} {r.port} from {', '.join(r.remote)}" for r in rules),
        rules=rules,
    )
    firewall.rules_disabled(name="OpenSSH's own any-address rule off (hearth's rule scopes SSH)",
                            rule_names=[configs.OPENSSH_ANY_RULE])


apply_firewall()
