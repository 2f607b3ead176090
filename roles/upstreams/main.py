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

from hearth.configs import upstreams as configs
from hearth.inventory import load_cached
from hearth.operations import http


@deploy("upstreams")
def check_upstreams() -> None:
    inv = load_cached(host.data.hearth_inventory)
    for check in configs.checks(inv):
        http.upstream_answers(name=f"{check.label} answers /v1/models", base_url=check.base_url,
                              model=check.serve.name, label=check.label)


check_upstreams()
