"""Who may reach which cloud alias, and how: the one rule the gateway and ``hearth plan`` share.

A client reaches a cloud alias in one of three ways: ``by_name`` (the model
``cloud/<provider>/<alias>`` is enough), ``escalation`` (that model plus the header
``X-Hearth-Escalate: cloud``) or ``fallback`` (a route's ``cloud_fallback`` after
every local upstream failed). Each is off unless the client's ``cloud`` section
turns it on, and each is limited to the providers, aliases and data policy listed
there. A refusal says what the inventory would have to allow.
"""

from __future__ import annotations

from typing import Literal

from .config import ClientCfg, CloudModelCfg, GatewayConfig

How = Literal["by_name", "escalation", "fallback"]
HOWS: tuple[How, ...] = ("by_name", "escalation", "fallback")


def alias(cfg: GatewayConfig, ref: str) -> CloudModelCfg | None:
    """The alias ``<provider>/<alias>`` (None when the config has no such alias)."""
    p, _, a = ref.partition("/")
    prov = cfg.clouds.get(p)
    return prov.models.get(a) if prov is not None else None


def denial(cfg: GatewayConfig, name: str, client: ClientCfg | None, ref: str,
           how: How) -> str | None:
    """None if ``client`` may reach ``ref`` by ``how``; else what the inventory lacks."""
    if client is None:
        return ("callers without an API key never reach cloud models: give the caller a "
                f"key under clients: with cloud.mode: by_name and {ref} in cloud.aliases")
    cc = client.cloud
    where = f"clients.{name}.cloud"
    if how == "fallback" and not cc.fallback:
        return f"{where}.fallback is not true"
    if how == "by_name" and cc.mode != "by_name":
        extra = (" (or send the header 'X-Hearth-Escalate: cloud')"
                 if cc.mode == "escalation" else "")
        return f"{where}.mode is {cc.mode!r}: it would have to be 'by_name'{extra}"
    if how == "escalation" and cc.mode == "none":
        return f"{where}.mode is 'none': it would have to be 'escalation' or 'by_name'"
    provider = ref.partition("/")[0]
    if cc.providers is not None and provider not in cc.providers:
        return f"{where}.providers would have to include {provider!r}"
    if cc.aliases is not None and ref not in cc.aliases:
        return f"{where}.aliases would have to include {ref!r}"
    m = alias(cfg, ref)
    if cc.no_retention and (m is None or not m.retains_nothing):
        return (f"{where}.no_retention is true and {ref} is not known to retain nothing "
                f"(clouds.{provider}.models.{ref.partition('/')[2]}: retains_prompts: false, "
                "trains_on_prompts: false)")
    return None


def reachable(cfg: GatewayConfig, name: str, client: ClientCfg | None
              ) -> dict[str, list[How]]:
    """Every alias ``client`` can reach, with the ways it can (by name, escalation,
    fallback through a route it may use)."""
    out: dict[str, list[How]] = {}
    routes = [r for r, rc in cfg.routes.items()
              if client is None or client.routes is None or r in client.routes]
    fallback_refs = {cfg.routes[r].cloud_fallback for r in routes} - {None}
    for p, prov in cfg.clouds.items():
        for a in prov.models:
            ref = f"{p}/{a}"
            hows: list[How] = [h for h in ("by_name", "escalation")
                               if denial(cfg, name, client, ref, h) is None]
            if ref in fallback_refs and denial(cfg, name, client, ref, "fallback") is None:
                hows.append("fallback")
            if hows:
                out[ref] = hows
    return out
