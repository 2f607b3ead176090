"""Cloud settings in the inventory: validated with file and line, rendered into the
gateway policy, and shown by ``hearth plan`` per client and per route."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import InventoryError, load_inventory
from hearth.plan import plan_text

from .standins import EXAMPLE, KEYS

FRAGMENT = """
  reader:                       # seed 001: an OpenAI client with a base URL, a key, a model
    key: env:HEARTH_KEY_READER
    routes: [chat, code]
    cloud:
      mode: by_name
      fallback: true
      aliases: [openrouter/llama-70b]
      no_retention: true
    budget:
      tokens_per_day: 200000
"""


def _inventory(tmp_path: Path, routes: str = "", clients: str = FRAGMENT) -> Path:
    text = EXAMPLE.read_text()
    if routes:
        text = text.replace("    gemma:\n      on_busy: busy\n", routes)
    text = text.replace("\nclients:", "\nclients:" + clients.rstrip("\n"), 1) if clients else text
    out = tmp_path / "inv.yml"
    out.write_text(text)
    return out


def test_inventory_cloud_sections_render_and_plan_shows_how(tmp_path: Path) -> None:
    routes = ("    gemma:\n      on_busy: busy\n      cloud_fallback: openrouter/llama-70b\n"
              "      cloud_no_retention: true\n")
    inv = load_inventory(_inventory(tmp_path, routes))
    cfg = gateway_config_from_inventory(
        inv, resolve={**KEYS, "env:HEARTH_KEY_READER": "sk-reader"}.__getitem__)
    assert cfg.clients["reader"].cloud.mode == "by_name"
    assert cfg.clients["reader"].budget.tokens_per_day == 200000
    assert cfg.routes["gemma"].cloud_fallback == "openrouter/llama-70b"
    llama = cfg.clouds["openrouter"].models["llama-70b"]
    assert (llama.id, llama.per_minute, llama.per_day, llama.retains_nothing) == (
        "meta-llama/llama-3.3-70b-instruct:free", 20, 200, True)
    text = plan_text(inv)
    assert "cloud/openrouter/qwen3-coder  qwen/qwen3-coder:free" in text
    assert "20/min, 200/day" in text and "retains prompts" in text
    reader = next(line for line in text.splitlines() if line.startswith("reader "))
    assert "openrouter/llama-70b (by name)" in reader and "200000 tokens/day" in reader
    hermes = next(line for line in text.splitlines() if line.startswith("hermes "))
    assert "openrouter/qwen3-coder (with X-Hearth-Escalate: cloud)" in hermes
    cursor = next(line for line in text.splitlines() if line.startswith("cursor "))
    assert cursor.rstrip().endswith("none")
    fallback = text.split("Cloud fallback per route")[1]
    gemma = next(line for line in fallback.splitlines() if line.startswith("gemma "))
    assert "cloud/openrouter/llama-70b" in gemma and "no client may fall back" in gemma




@pytest.mark.parametrize("policy, message", [
    ("      terminal: true\n      cloud_fallback: openrouter/llama-70b\n",
     "a terminal route never falls back, not even to the cloud"),
    ("      private: true\n      cloud_fallback: openrouter/llama-70b\n",
     "a private route never sends anything to the cloud"),
    ("      cloud_fallback: openrouter/qwen3-coder\n      cloud_no_retention: true\n",
     "may retain or train on prompts"),
    ("      cloud_fallback: openrouter/gone\n", "unknown cloud alias openrouter/gone"),
])
def test_inventory_refuses_bad_fallbacks_with_file_and_line(
        tmp_path: Path, policy: str, message: str) -> None:
    path = _inventory(tmp_path, "    gemma:\n      on_busy: busy\n" + policy, clients="")
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    line = next(x for x in exc.value.lines if "routing.routes.gemma.cloud_fallback" in x)
    assert message in line and line.startswith(f"{path}:")


def test_docs_fragments_per_seed_are_valid_inventory() -> None:
    import re

    import yaml

    from hearth.inventory.model import Client, Cloud, RoutePolicy

    doc = (EXAMPLE.parents[1] / "docs" / "gateway.md").read_text()
    section = doc[doc.index("### One inventory fragment per seed"):]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 4  # seeds 000, 001, 002, 004
    for block in blocks:
        data = yaml.safe_load(block)
        for c in (data.get("clouds") or {}).values():
            Cloud.model_validate(c)
        for c in (data.get("clients") or {}).values():
            Client.model_validate(c)
        for r in ((data.get("routing") or {}).get("routes") or {}).values():
            RoutePolicy.model_validate(r)
