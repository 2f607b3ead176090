"""`hearth lab try`: one chat completion through the lab's gateway, as a client would send it.

The request is made with the official ``openai`` client, from inside another lab
machine's network namespace (its LAN and overlay interfaces, its firewall), with
only a base URL, a client key and a model name. It prints the answer and the
route and upstream the gateway chose (``X-Hearth-Route`` / ``X-Hearth-Upstream``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hearth.inventory import Inventory, load_inventory, resolve_secret
from hearth.lab import gateway_check, machine
from hearth.lab.sh import LabError
from hearth.lab.state import LabRecord

# Runs inside the client machine's network namespace with this virtualenv's python.
CLIENT = """
import json, os, sys
import openai
client = openai.OpenAI(base_url=os.environ["HEARTH_TRY_URL"], api_key=os.environ["HEARTH_TRY_KEY"],
                       timeout=float(os.environ["HEARTH_TRY_TIMEOUT"]), max_retries=0)
try:
    raw = client.chat.completions.with_raw_response.create(
        model=os.environ["HEARTH_TRY_MODEL"],
        messages=[{"role": "user", "content": os.environ["HEARTH_TRY_PROMPT"]}],
    )
except openai.APIStatusError as exc:
    print(json.dumps({"status": exc.status_code, "error": exc.message}))
    sys.exit(0)
except openai.APIConnectionError as exc:
    print(json.dumps({"status": None, "error": f"cannot connect: {exc}"}))
    sys.exit(0)
answer = raw.parse()
print(json.dumps({
    "status": raw.status_code,
    "answer": answer.choices[0].message.content,
    "served_model": answer.model,
    "route": raw.headers.get("x-hearth-route"),
    "upstream": raw.headers.get("x-hearth-upstream"),
}))
"""


@dataclass
class TryResult:
    """What the client got back, and from where it asked."""

    client_machine: str
    url: str
    model: str
    status: int | None
    answer: str | None = None
    route: str | None = None
    upstream: str | None = None
    error: str | None = None
    served_model: str | None = None


def client_key(inv: Inventory) -> str:
    """The key of the first client the inventory lets use every route."""
    for client in inv.clients.values():
        if client.routes is None:
            return resolve_secret(client.key)
    raise LabError("no client in the inventory may use every route: add one under `clients:`")


def client_machine(inv: Inventory, lab: LabRecord) -> str:
    """An awake lab container that is not the gateway's host: it plays the laptop.

    The client runs in the machine's network namespace, so a VM (whose network lives in
    its own kernel, behind a tap: no namespace here) is never picked.
    """
    assert inv.gateway is not None
    for name, host in inv.hosts.items():
        if name == inv.gateway.host or host.os != "linux" or name not in lab.machines:
            continue
        if not lab.machines[name].netns:
            continue
        if machine.power_state(lab.machines[name]) == "on":
            return name
    raise LabError("no other lab container is on to send the request from (a VM has no namespace here)")


def ask(lab: LabRecord, inventory: Path, model: str | None, prompt: str, timeout: float = 180) -> TryResult:
    """Send one chat completion through the gateway from another lab machine."""
    inv = load_inventory(inventory)
    url = gateway_check.gateway_url(inv)
    if url is None:
        raise LabError(f"{inventory}: no gateway in this inventory")
    prefix = inv.routing.alias_prefix if inv.routing else "hearth"
    model = model or f"{prefix}/auto"
    name = client_machine(inv, lab)
    env = {**os.environ, "HEARTH_TRY_URL": url, "HEARTH_TRY_KEY": client_key(inv), "HEARTH_TRY_MODEL": model,
           "HEARTH_TRY_PROMPT": prompt, "HEARTH_TRY_TIMEOUT": str(timeout)}  # fmt: skip
    data = run_client(["ip", "netns", "exec", lab.machines[name].netns], env, timeout)
    return TryResult(client_machine=name, url=url, model=model, **data)


def run_client(prefix: list[str], env: dict[str, str], timeout: float) -> dict[str, object]:
    """Run the openai client (``prefix`` places it, e.g. in a machine's namespace); its JSON line."""
    argv = [*prefix, sys.executable, "-c", CLIENT]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout + 30, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise LabError(f"the openai client failed: {proc.stderr.strip()[-800:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def report(result: TryResult) -> str:
    """What `hearth lab try` prints."""
    head = f"from {result.client_machine} -> {result.url} (model {result.model})"
    if result.status != 200:
        return f"{head}\nrefused: HTTP {result.status}: {result.error}"
    return (f"{head}\nroute: {result.route}   upstream: {result.upstream}   model: {result.served_model}\n"
            f"answer: {result.answer}")
