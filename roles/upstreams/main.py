"""Role upstreams: from the gateway host, check the upstreams hearth does not install.

LM Studio, any OpenAI-compatible server (`engine: openai` / `lmstudio`) and every
upstream on a host hearth does not deploy (Windows until its role exists) must
answer `/v1/models` with the served name the inventory routes to. This role asks
each one from the gateway host -- where the gateway will ask -- and reports the
answer in the deploy's output. It changes nothing and never fails the deploy:
an upstream that is down (or asleep) is the gateway's to handle at request time.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from hearth.inventory import load_cached
from hearth.inventory.groups import deployable
from hearth.operations import http

NOT_INSTALLED = ("openai", "lmstudio")


@deploy("upstreams")
def check_upstreams() -> None:
    inv = load_cached(host.data.hearth_inventory)
    for name, node in inv.hosts.items():
        for serve in node.serves:
            if serve.engine not in NOT_INSTALLED and deployable(node):
                continue  # hearth installs it; its own role waits for it
            base = serve.base_url or f"http://{node.overlay_ip}:{serve.listen_port}"
            label = f"{name}/{serve.name}" + (" (sleeps: may be asleep)" if node.sleep.sleeps else "")
            http.upstream_answers(name=f"{label} answers /v1/models", base_url=base, model=serve.name,
                                  label=label)


check_upstreams()
