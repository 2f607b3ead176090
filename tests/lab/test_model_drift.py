"""Lab: a model Ollama already has is compared with the plan's numbers at deploy time.

The Ollama stand-in has no GGUF, so it answers /api/show with the model_info a test
puts beside its store; the deploy must name the host, the model and the numbers.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from hearth.configs import ollama as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle

pytestmark = pytest.mark.lab


def test_a_model_with_other_numbers_is_reported_by_the_deploy(lab: Any) -> None:
    if not lab.local:
        pytest.skip("needs the Ollama stand-in to report a different model")
    inv = load_inventory(lab.inventory, group_defaults())
    hosts = [n for n in inv.hosts if inv.hosts[n].os == "linux" and configs.ollama_serves(inv, n)
             and not inv.hosts[n].sleep.sleeps]
    if not hosts:
        pytest.skip("no always-on Linux host serves an Ollama model in this inventory")
    name = hosts[0]
    serve = configs.ollama_serves(inv, name)[0]
    tag = serve.model if ":" in serve.model else f"{serve.model}:latest"
    store = f"{configs.environment(inv, name)['OLLAMA_MODELS']}/standin/model-info"
    info = {"general.architecture": "llama", "llama.block_count": 999, "general.parameter_count": 1}
    node = lab.host(name)
    target = f"{store}/{tag.replace('/', '_').replace(':', '_')}.json"
    node.check_output(f"sudo mkdir -p {store} && echo {shlex.quote(json.dumps(info))} | sudo tee {target}")
    try:
        run = cycle.run_pyinfra(cycle.pyinfra_inventory_for(lab.inventory), limit=name, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"{name}: {serve.model} as served reports layers 999" in run.stdout + run.stderr
    finally:
        node.check_output(f"sudo rm -f {target}")
