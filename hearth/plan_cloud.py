"""`hearth plan`'s cloud section: every alias with its limits and data policy, and per
client and per route which aliases can be reached and how (the gateway's own rule)."""

from __future__ import annotations

from collections.abc import Iterator

from hearth.gateway import cloudpolicy
from hearth.gateway.config import CloudModelCfg
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory.model import Inventory

HOW = {"by_name": "by name", "escalation": "with X-Hearth-Escalate: cloud",
       "fallback": "as route fallback"}


def _policy(m: CloudModelCfg) -> str:
    if m.retains_nothing:
        return "retains nothing"
    if m.retains_prompts is None and m.trains_on_prompts is None:
        return "unknown (treated as retaining)"
    parts = ["retains prompts" if m.retains_prompts else "",
             "trains on prompts" if m.trains_on_prompts else ""]
    return ", ".join(p for p in parts if p) or "unknown (treated as retaining)"


def _limits(m: CloudModelCfg) -> str:
    parts = [f"{m.per_minute}/min" if m.per_minute else "", f"{m.per_day}/day" if m.per_day else ""]
    return ", ".join(p for p in parts if p) or "no limit set"


def cloud_lines(inv: Inventory) -> Iterator[str]:
    from hearth.plan import table

    if not inv.clouds and not inv.clients:
        return
    cfg = gateway_config_from_inventory(inv, resolve=lambda ref: ref)
    if inv.clouds:
        yield "Cloud aliases (limits counted by the gateway across clients)"
        rows = [[f"cloud/{p}/{a}", m.id, _limits(m), _policy(m), "yes" if m.vision else "no"]
                for p, pc in cfg.clouds.items() for a, m in pc.models.items()]
        yield from table(["alias", "provider model", "limits", "data policy", "sees images"], rows)
        yield ""
    if inv.clients:
        yield "Clients"
        rows = []
        for name, client in cfg.clients.items():
            routes = ", ".join(client.routes) if client.routes else "all routes"
            extra = [f"{client.rate_per_minute}/min" if client.rate_per_minute else ""]
            b = client.budget
            extra += [f"{b.tokens_per_day} tokens/day" if b.tokens_per_day else "",
                      f"${b.usd_per_day:g}/day" if b.usd_per_day else ""]
            reach = cloudpolicy.reachable(cfg, name, client)
            cloud = "; ".join(  # by name already covers a request with the header
                f"{ref} ({', '.join(HOW[h] for h in hows if h != 'escalation' or 'by_name' not in hows)})"
                for ref, hows in reach.items()) or "none"
            rows.append([name, routes, ", ".join(e for e in extra if e) or "-", cloud])
        yield from table(["client", "routes", "limits", "cloud aliases reachable (how)"], rows)
    fallbacks = [(r, rc) for r, rc in cfg.routes.items() if rc.cloud_fallback or rc.private]
    if fallbacks:
        yield ""
        yield "Cloud fallback per route (after every local upstream and the failover chain)"
        rows = []
        for r, rc in fallbacks:
            if rc.private:
                rows.append([r, "never (private)", "-"])
                continue
            ref = rc.cloud_fallback or ""
            who = [n for n, c in cfg.clients.items()
                   if (c.routes is None or r in c.routes)
                   and cloudpolicy.denial(cfg, n, c, ref, "fallback") is None]
            rows.append([r, f"cloud/{ref}", ", ".join(who) or "no client may fall back"])
        yield from table(["route", "fallback", "for clients"], rows)
