"""Which upstreams the deploy checks from the gateway host: the ones hearth does not install.

LM Studio, any OpenAI-compatible server (``engine: openai`` / ``lmstudio``) and every
serve on a host hearth does not deploy (Windows until its role exists). hearth's own
roles wait for the engines they install; these only get asked (roles/upstreams).
"""

from __future__ import annotations

from dataclasses import dataclass

from hearth.inventory import Inventory, Serve
from hearth.inventory.groups import deployable

NOT_INSTALLED = ("openai", "lmstudio")


@dataclass(frozen=True)
class Check:
    """One upstream to ask: where (``base_url`` without ``/v1``), for which name, how to call it."""

    host: str
    serve: Serve
    base_url: str
    label: str


def checks(inv: Inventory) -> list[Check]:
    """The upstreams hearth does not install, in inventory order.

    Example:
        [c.label for c in checks(inv)]  # ["mouth/gemma-4-31b", "den-pi/llamacpp-phi3.5"]
    """
    from hearth.configs.tunnel import local_url, tunnel_hosts
    from hearth.configs.unmanaged import upstream_address

    tunneled = set(tunnel_hosts(inv))  # reach ssh_tunnel: asked where the gateway asks, the tunnel's local end
    out = []
    for name, node in inv.hosts.items():
        for serve in node.serves:
            if serve.engine not in NOT_INSTALLED and deployable(node):
                continue  # hearth installs it; its own role waits for it
            where = (local_url(inv, name, serve.listen_port) if name in tunneled
                     else f"http://{upstream_address(inv, name)}:{serve.listen_port}")
            base = (serve.base_url or where).rstrip("/").removesuffix("/v1")
            label = f"{name}/{serve.name}" + (" (sleeps: may be asleep)" if node.sleep.sleeps else "")
            out.append(Check(name, serve, base, label))
    return out
