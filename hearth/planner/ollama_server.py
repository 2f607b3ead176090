"""What one Ollama server holds at once: the loaded-model cap hearth sets and plans with.

Ollama 0.14.0 (the pinned release) reads ``OLLAMA_MAX_LOADED_MODELS``; unset (0), its
scheduler picks ``defaultModelsPerGPU * max(len(gpus), 1)`` = 3 per GPU it discovers at
the first load, one cap for the whole server (``server/sched.go``: ``defaultModelsPerGPU
= 3`` and the ``maxRunners <= 0`` branch of ``processPending``). Whatever the cap, a model
that does not fit beside the loaded ones makes Ollama unload an idle one first
(``findRunnerToUnload``: the shortest keep-alive, then the model path).

hearth always writes the cap into the unit (docs/roles.md, ollama): the inventory's
``max_loaded_models``, else Ollama's own rule computed from the inventory's GPUs. The
planner, the gateway's per-server admission and the deploy all read it from here, so they
agree with each other and with what the server does, whatever GPUs Ollama happens to see
at its first load (a card still waking, an extra iGPU) and whatever a later release
changes its default to.
"""

from __future__ import annotations

from hearth.inventory.model import Host

MODELS_PER_GPU = 3  # Ollama 0.14.0 server/sched.go: defaultModelsPerGPU


def max_loaded_models(host: Host) -> int:
    """The host's OLLAMA_MAX_LOADED_MODELS as the deploy writes it.

    Example:
        max_loaded_models(host)  # 1 with max_loaded_models: 1; 3 on a one-GPU box without it
    """
    serves = [s for s in host.serves if s.engine == "ollama"]
    said = next((s.max_loaded_models for s in serves if s.max_loaded_models), None)
    return said if said is not None else MODELS_PER_GPU * max(len(host.gpus), 1)
