"""VRAM planner: how much of each GPU every served model holds, and whether it fits.

All sizes are GiB (2**30 bytes). A model's resident size is

* llama.cpp engines (Ollama, LM Studio): weights + KV cache for ``context`` tokens
  in each of ``slots`` parallel sequences + a compute buffer;
* vLLM: the engine pre-allocates ``gpu_memory_utilization`` of the card's total
  memory; inside that share go the weights, activations/CUDA graphs, and a KV
  cache pool that must hold at least one full ``context`` sequence or vLLM
  refuses to start.

Weights are parameters x bits per weight. GGUF k-quants report an average over all
tensors (embeddings included); AWQ/GPTQ/FP8 checkpoints keep embeddings and the
output head at 16 bits. A vision tower is always 16-bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations

from hearth.inventory.model import ArchSpec, Gpu, Host, Serve
from hearth.planner import quants
from hearth.planner.catalogue import CATALOGUE, find_arch, ollama_quant
from hearth.planner.ollama_server import max_loaded_models

GIB = float(2**30)

# Bytes per cached element. q8_0 / q4_0 are llama.cpp block formats (32 values +
# a 16-bit scale); turboquant_k8v4 keeps 8-bit keys and 4-bit values.
KV_BYTES: dict[str, float] = {
    "auto": 2.0,
    "fp16": 2.0,
    "f16": 2.0,  # Ollama's name for it
    "bf16": 2.0,
    "fp8": 1.0,
    "fp8_e4m3": 1.0,  # vLLM's explicit fp8 formats (and Intel Gaudi's fp8_inc): one byte
    "fp8_e5m2": 1.0,
    "fp8_inc": 1.0,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
    "turboquant_k8v4": 0.75,
}

LLAMA_CPP_OVERHEAD_GB = 0.2  # CUDA context + compute buffer at default batch sizes
# An embedding model (encoder) keeps no per-sequence KV cache: it holds one batch of
# activations instead. Ollama's own estimate for nomic-embed-text (768 wide, n_ubatch 512)
# is 48 MiB of graph + 24 MiB of cache (memory.required in intel/ipex-llm#12912's log);
# scaled with the width for other encoders.
ENCODER_BATCH_GB = 72 / 1024
ENCODER_REFERENCE_WIDTH = 768
VLLM_OVERHEAD_GB = 1.5  # activation peak from vLLM's profiling run + CUDA graphs
VLLM_DEFAULT_UTILIZATION = 0.9  # vLLM's --gpu-memory-utilization default


@dataclass(frozen=True)
class ModelPlan:
    """What one served model holds on its GPU."""

    host: str
    serve: str
    engine: str
    arch: str
    weights_gb: float
    kv_gb: float
    overhead_gb: float
    resident_gb: float
    full_context_sequences: float
    problems: tuple[str, ...] = ()
    context: int = 0
    quant: str = ""


@dataclass
class GpuPlan:
    """The budget of one GPU and the models placed on it."""

    host: str
    index: int
    gpu: Gpu
    models: list[ModelPlan] = field(default_factory=list)
    # Ollama's OLLAMA_MAX_LOADED_MODELS on this host: at most this many of its models are
    # resident at once; the others take turns (None: every model loaded together).
    max_loaded: int | None = None

    def ollama_models(self) -> list[ModelPlan]:
        """This GPU's Ollama models, largest first."""
        return sorted((m for m in self.models if m.engine == "ollama"), key=lambda m: -m.resident_gb)

    def takes_turns(self) -> bool:
        """More Ollama models than may be loaded at once: they swap in and out."""
        return self.max_loaded is not None and len(self.ollama_models()) > self.max_loaded

    def resident_set(self) -> list[ModelPlan]:
        """The worst case that can be resident together: every other engine's model plus the
        largest Ollama models the loaded-model cap allows."""
        ollama = self.ollama_models()
        cap = len(ollama) if self.max_loaded is None else self.max_loaded
        return [m for m in self.models if m.engine != "ollama"] + ollama[:cap]

    def co_resident(self) -> list[list[ModelPlan]]:
        """The sets of this card's Ollama models the server can hold at once, largest sets
        first, in the inventory's order: at most ``max_loaded`` of them, together within what the card's other engines
        leave. Only maximal sets (none inside another): a model in none of them does not fit
        even alone. Ollama unloads an idle model when the cap is reached or the next one does
        not fit beside the loaded ones (``server/sched.go``), so these are its turns.

        Example:
            plan.co_resident()  # [[qwen3.5:9b], [deepseek-coder:6.7b]] at max_loaded 1
        """
        ollama = [m for m in self.models if m.engine == "ollama"]
        room = self.gpu.usable_gb - sum(m.resident_gb for m in self.models if m.engine != "ollama")
        cap = len(ollama) if self.max_loaded is None else min(self.max_loaded, len(ollama))
        found: list[tuple[int, ...]] = []
        for size in range(cap, 0, -1):
            for combo in combinations(range(len(ollama)), size):
                if (sum(ollama[i].resident_gb for i in combo) <= room
                        and not any(set(combo) <= set(bigger) for bigger in found)):  # fmt: skip
                    found.append(combo)
        return [[ollama[i] for i in combo] for combo in found]

    @property
    def used_gb(self) -> float:
        return sum(model.resident_gb for model in self.resident_set())

    @property
    def headroom_gb(self) -> float:
        return self.gpu.usable_gb - self.used_gb

    @property
    def fits(self) -> bool:
        return self.headroom_gb >= 0 and not any(m.problems for m in self.models)


def weights_gb(arch: ArchSpec, quant: str) -> float:
    """Size of the weights in GiB at a quantisation.

    Example:
        weights_gb(CATALOGUE["qwen2.5-14b"], "q4_k_m")  # ~8.3
    """
    q = quants.QUANTS[quant]
    if q.sixteen_bit_embeddings:
        body = (arch.params_b - arch.embed_params_b) * q.bits / 8 + arch.embed_params_b * 2
    else:
        body = arch.params_b * q.bits / 8
    return (body + arch.vision_params_b * 2) * 1e9 / GIB


def kv_cache_gb(arch: ArchSpec, context: int, kv_dtype: str) -> float:
    """KV cache for one sequence of ``context`` tokens, in GiB.

    Sliding-window layers never cache more than their window.
    """
    per_layer_token = 2 * arch.kv_heads * arch.head_dim * KV_BYTES[kv_dtype]
    full_layers = arch.layers - arch.sliding_window_layers
    window = min(context, arch.sliding_window or context)
    tokens = full_layers * context + arch.sliding_window_layers * window
    return per_layer_token * tokens / GIB


def resolve_quant(serve: Serve, arch_name: str) -> tuple[str | None, str | None]:
    """(canonical quant, problem): the inventory's quant, else what the model name says, else
    the engine's default (Ollama's library quant for the model; 16-bit for vLLM and others)."""
    said = serve.quant
    if said in quants.SCHEME_QUANTS:
        scheme = quants.scheme_from_model(serve.model)
        if scheme is None:
            return None, (f"quant '{said}' does not say its scheme: set quant to w4a16, w8a8 or fp8 "
                          "(the checkpoint's quantization_config)")
        return scheme, None
    if said is not None:
        found = quants.normalise(said)
        if found is None:
            return None, f"unknown quant '{said}' (known: {', '.join(quants.known())})"
        return found, None
    from hearth.planner import names

    from_name = names.parse(serve.model).quant
    if from_name is not None:
        return from_name, None
    if serve.engine == "ollama":
        return ollama_quant(arch_name), None
    return "fp16", None


def plan_serve(host: str, serve: Serve, arch_name: str, arch: ArchSpec, gpu: Gpu) -> ModelPlan:
    """Estimate the resident size of one served model on its GPU."""
    quant, problem = resolve_quant(serve, arch_name)
    if quant is None:
        raise ValueError(problem)
    weights = weights_gb(arch, quant)
    if arch.kind == "encoder":
        plan = _plan_encoder(host, serve, arch_name, arch, weights)
    else:
        plan = _plan_decoder(host, serve, arch_name, arch, gpu, weights)
    return replace(plan, context=serve.context, quant=quant)


def _plan_decoder(host: str, serve: Serve, arch_name: str, arch: ArchSpec, gpu: Gpu, weights: float) -> ModelPlan:
    one_sequence = kv_cache_gb(arch, serve.context, serve.kv_cache_dtype)
    if serve.engine == "vllm":
        return _plan_vllm(host, serve, arch_name, gpu, weights, one_sequence)
    kv = one_sequence * serve.slots
    resident = weights + kv + LLAMA_CPP_OVERHEAD_GB
    problems: list[str] = []
    if serve.gpu_memory_utilization is not None:
        cap = serve.gpu_memory_utilization * gpu.vram_gb
        if resident > cap:
            problems.append(
                f"needs {resident:.1f} GiB but gpu_memory_utilization "
                f"{serve.gpu_memory_utilization} caps it at {cap:.1f} GiB "
                f"({resident - cap:.1f} GiB over)"
            )
    return ModelPlan(
        host, serve.name, serve.engine, arch_name, weights, kv, LLAMA_CPP_OVERHEAD_GB,
        resident, float(serve.slots), tuple(problems),
    )


def _plan_encoder(host: str, serve: Serve, arch_name: str, arch: ArchSpec, weights: float) -> ModelPlan:
    """An embedding model: weights plus one batch of activations, whatever its slots."""
    width = arch.head_dim * arch.kv_heads
    batch = ENCODER_BATCH_GB * width / ENCODER_REFERENCE_WIDTH
    return ModelPlan(host, serve.name, serve.engine, arch_name, weights, 0.0, batch, weights + batch,
                     float(serve.slots))  # fmt: skip


def _plan_vllm(
    host: str, serve: Serve, arch_name: str, gpu: Gpu, weights: float, one_sequence: float
) -> ModelPlan:
    utilization = serve.gpu_memory_utilization or VLLM_DEFAULT_UTILIZATION
    claimed = utilization * gpu.vram_gb
    pool = claimed - weights - VLLM_OVERHEAD_GB
    problems: list[str] = []
    if pool < one_sequence:
        problems.append(
            f"vLLM's share ({utilization} x {gpu.vram_gb:g} = {claimed:.1f} GiB) leaves "
            f"{max(pool, 0):.1f} GiB of KV cache after {weights:.1f} GiB of weights and "
            f"{VLLM_OVERHEAD_GB} GiB of activations; one {serve.context}-token sequence "
            f"needs {one_sequence:.1f} GiB ({one_sequence - max(pool, 0):.1f} GiB short)"
        )
    sequences = pool / one_sequence if one_sequence > 0 else 0.0
    return ModelPlan(
        host, serve.name, serve.engine, arch_name, weights, max(pool, 0.0), VLLM_OVERHEAD_GB,
        claimed, max(sequences, 0.0), tuple(problems),
    )


def plan_host(
    name: str, host: Host, custom: dict[str, ArchSpec]
) -> tuple[list[GpuPlan], list[tuple[int, str]]]:
    """Place every served model of a host on its GPU.

    Returns the per-GPU plans and problems as (serve index, message) pairs for
    served models that cannot be planned (unknown architecture or quantisation,
    missing GPU).
    """
    ollama = [serve for serve in host.serves if serve.engine == "ollama"]
    # One Ollama server per host: OLLAMA_CONTEXT_LENGTH is the largest context of its models
    # (hearth.configs.ollama), so every model on it is planned at the context it really gets.
    ollama_context = max((serve.context for serve in ollama), default=0)
    # ... and OLLAMA_NUM_PARALLEL the most slots of any: Ollama gives every model that many
    # sequences of KV cache (it loads each with num_ctx x num_parallel), whatever its own slots.
    ollama_slots = max((serve.slots for serve in ollama), default=1)
    cap = max_loaded_models(host) if ollama else None  # as the deploy writes it (ollama_server)
    plans = [GpuPlan(name, index, gpu, max_loaded=cap) for index, gpu in enumerate(host.gpus)]
    problems: list[tuple[int, str]] = []
    for position, serve in enumerate(host.serves):
        if serve.engine == "ollama":
            serve = serve.model_copy(update={"context": ollama_context, "slots": ollama_slots})
        if serve.engine == "openai" or not host.gpus:
            continue  # a remote endpoint or a CPU-only engine: no VRAM to plan
        if serve.gpu >= len(plans):
            problems.append((position, f"gpu {serve.gpu} does not exist on this host"))
            continue
        found = find_arch(serve.arch, serve.model, custom)
        if found is None:
            problems.append((position, _unknown_arch(serve, custom)))
            continue
        arch_name, arch = found
        _, quant_problem = resolve_quant(serve, arch_name)
        if quant_problem is not None:
            problems.append((position, quant_problem))
            continue
        plans[serve.gpu].models.append(plan_serve(name, serve, arch_name, arch, host.gpus[serve.gpu]))
    return plans, problems


def _unknown_arch(serve: Serve, custom: dict[str, ArchSpec]) -> str:
    known = ", ".join(sorted({*CATALOGUE, *custom}))
    what = f"arch '{serve.arch}'" if serve.arch else f"model '{serve.model}'"
    return (
        f"unknown {what}: set arch to one of {known}, or describe it under models: "
        "(params_b, layers, kv_heads, head_dim): `hearth models describe FILE` prints that entry "
        "from the model's GGUF file or config.json"
    )
