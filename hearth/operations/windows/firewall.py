"""Windows Firewall: hearth's own inbound rules (group ``hearth``), scoped by address."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from pyinfra import host
from pyinfra.api import operation

from hearth import powershell as ps
from hearth.facts.windows import FirewallProfiles, FirewallRules
from hearth.operations.windows import run

GROUP = "hearth"


@dataclass(frozen=True)
class Rule:
    """Allow inbound ``protocol``/``port`` only from ``remote`` (CIDRs)."""

    name: str
    display: str
    protocol: str
    port: int
    remote: tuple[str, ...]

    def stamp(self) -> str:
        return "hearth " + hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def new_rule_line(rule: Rule, group: str = GROUP) -> str:
    """The PowerShell line that creates ``rule`` in ``group`` (its Description carries the stamp)."""
    return (
        f"New-NetFirewallRule -Name {ps.quote(rule.name)} -DisplayName {ps.quote(rule.display)} "
        f"-Group {ps.quote(group)} -Description {ps.quote(rule.stamp())} -Direction Inbound -Action Allow "
        f"-Protocol {rule.protocol} -LocalPort {int(rule.port)} -RemoteAddress {ps.array(rule.remote)} "
        "-Profile Any -Enabled True | Out-Null"
    )


@operation()
def inbound_rules(rules: list[Rule], group: str = GROUP):
    """
    Make the firewall group ``group`` hold exactly ``rules``: a missing or changed
    rule is (re)created, a rule of the group not in ``rules`` is removed. Each rule's
    Description carries a stamp of its definition; an unchanged rule is left alone.

    **Example:**

    .. code:: python

        firewall.inbound_rules(name="Ollama only from the overlay", rules=[
            firewall.Rule("hearth-ollama-11434", "hearth: ollama", "TCP", 11434, ("10.77.0.0/24",)),
        ])
    """
    now = host.get_fact(FirewallRules, group=group) or {}
    wanted = {rule.name: rule for rule in rules}
    lines: list[str] = []
    for name in sorted(set(now) - set(wanted)):
        lines.append(f"Remove-NetFirewallRule -Name {ps.quote(name)}")
    for rule in rules:
        current = now.get(rule.name)
        if current and current.get("Description") == rule.stamp() and current.get("Enabled") == "True":
            continue
        if current:
            lines.append(f"Remove-NetFirewallRule -Name {ps.quote(rule.name)}")
        lines.append(new_rule_line(rule, group))
    if lines:
        yield run(*lines)
    else:
        host.noop(f"firewall group {group} holds its {len(rules)} rules")


@operation()
def rules_disabled(rule_names: list[str]):
    """
    Disable other inbound rules that would open a port hearth scopes (e.g. the
    ``OpenSSH-Server-In-TCP`` rule the OpenSSH capability adds, open to any address).
    Rules that do not exist are fine.

    **Example:**

    .. code:: python

        firewall.rules_disabled(name="OpenSSH's own any-address rule off", rule_names=["OpenSSH-Server-In-TCP"])
    """
    now = host.get_fact(FirewallRules, names=tuple(rule_names)) or {}
    enabled = [name for name, rule in now.items() if rule.get("Enabled") == "True"]
    if not enabled:
        host.noop("no other rule opens these ports")
        return
    yield run(f"Disable-NetFirewallRule -Name {ps.array(enabled)}")


@operation()
def profiles_enabled():
    """
    Windows Firewall is on in every profile (Domain, Private, Public): scoped allow
    rules mean nothing with the firewall off.

    **Example:**

    .. code:: python

        firewall.profiles_enabled(name="Windows Firewall on")
    """
    now = host.get_fact(FirewallProfiles) or {}
    off = [name for name in ("Domain", "Private", "Public") if not now.get(name)]
    if not off:
        host.noop("firewall is on in every profile")
        return
    yield run(f"Set-NetFirewallProfile -Profile {ps.array(off)} -Enabled True")
