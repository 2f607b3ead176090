"""Seed 001's box as its write-up runs it, for the planner's and the Ollama tests.

A 12 GB RTX 5070, ``qwen3.5:9b`` kept warm as the default, ``deepseek-coder:6.7b``
loaded on demand, ``OLLAMA_MAX_LOADED_MODELS=1``.
"""

from __future__ import annotations

_BOX = """
name: seed001
lan: {cidr: 10.1.0.0/24}
overlay: {cidr: 10.99.0.0/24}
hosts:
  gpu-1:
    address: 10.1.0.41
    overlay_ip: 10.99.0.41
    gpus: [{model: RTX 5070, vram_gb: 12, reserved_gb: 0.5}]
    serves:
      - {name: "qwen3.5:9b", engine: ollama, model: "qwen3.5:9b", context: 8192, keep_alive: "-1",
         max_loaded_models: 1, routes: [local]}
      - {name: "deepseek-coder:6.7b", engine: ollama, model: "deepseek-coder:6.7b", context: CODER_CONTEXT,
         keep_alive: 5m, max_loaded_models: 1, routes: [local-code]}
routing: {default_route: local}
"""


def box(coder_context: int = 8192) -> str:
    """The inventory text, with deepseek-coder served at ``coder_context`` tokens.

    Example:
        box(16384)  # the context at which deepseek-coder alone no longer fits the card
    """
    return _BOX.replace("CODER_CONTEXT", str(coder_context))
