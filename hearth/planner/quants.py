"""Quantisation names as Ollama, llama.cpp and vLLM write them, and their bits per weight.

Names are matched case-insensitively (``Q4_K_M``, ``q4_k_m``, ``F16``, ``awq_marlin``).

Sources:
* llama.cpp ``tools/quantize/quantize.cpp`` (``QUANT_OPTIONS``, printed by
  ``llama-quantize --help``): each GGUF type's file size at Llama-3-8B (8.03 B
  parameters) or its bits per weight. A size of G GiB is G x 2**30 x 8 / 8.03e9 bits per
  weight; those averages include the tensors a recipe keeps at higher precision.
  The five types the seed measurements calibrate (q4_k_m, q5_k_m, q6_k, q8_0, q4_0)
  keep the figures the planner's accuracy table was measured with.
* vLLM's ``--quantization`` choices: AWQ and GPTQ checkpoints are 4-bit with a 16-bit
  scale and zero per group of 128 (4.25 bits), their embeddings and output head 16-bit;
  FP8 / INT8 (W8A8) are 8 bits per weight with 16-bit embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

LLAMA_CPP = "llama.cpp tools/quantize/quantize.cpp QUANT_OPTIONS"
REF_PARAMS = 8.03e9  # Llama-3-8B, the reference model of QUANT_OPTIONS' sizes


def _from_size(gib: float) -> float:
    return round(gib * 2**30 * 8 / REF_PARAMS, 2)


@dataclass(frozen=True)
class Quant:
    """A quantisation: average bits per weight, and whether embeddings stay 16-bit."""

    bits: float
    source: str
    sixteen_bit_embeddings: bool = False


QUANTS: dict[str, Quant] = {
    "fp32": Quant(32.0, "32-bit floats"),
    "fp16": Quant(16.0, "16-bit floats"),
    "bf16": Quant(16.0, "16-bit floats"),
    # GGUF (llama.cpp, Ollama, LM Studio)
    "q8_0": Quant(8.5, LLAMA_CPP + ": 32 8-bit values + a 16-bit scale per block"),
    "q6_k": Quant(6.56, LLAMA_CPP + ": 6.14G at Llama-3-8B"),
    "q5_k_m": Quant(5.69, LLAMA_CPP + ": 5.33G at Llama-3-8B"),
    "q5_k_s": Quant(_from_size(5.21), LLAMA_CPP + ": 5.21G at Llama-3-8B"),
    "q5_0": Quant(_from_size(5.21), LLAMA_CPP + ": 5.21G at Llama-3-8B"),
    "q5_1": Quant(_from_size(5.65), LLAMA_CPP + ": 5.65G at Llama-3-8B"),
    "q4_k_m": Quant(4.85, LLAMA_CPP + ": 4.58G at Llama-3-8B (seed-calibrated)"),
    "q4_k_s": Quant(_from_size(4.37), LLAMA_CPP + ": 4.37G at Llama-3-8B"),
    "q4_0": Quant(4.55, LLAMA_CPP + ": 4.34G at Llama-3-8B (seed-calibrated)"),
    "q4_1": Quant(_from_size(4.78), LLAMA_CPP + ": 4.78G at Llama-3-8B"),
    "iq4_nl": Quant(4.50, LLAMA_CPP + ": 4.50 bpw"),
    "iq4_xs": Quant(4.25, LLAMA_CPP + ": 4.25 bpw"),
    "q3_k_l": Quant(_from_size(4.03), LLAMA_CPP + ": 4.03G at Llama-3-8B"),
    "q3_k_m": Quant(_from_size(3.74), LLAMA_CPP + ": 3.74G at Llama-3-8B"),
    "q3_k_s": Quant(_from_size(3.41), LLAMA_CPP + ": 3.41G at Llama-3-8B"),
    "iq3_m": Quant(3.66, LLAMA_CPP + ": 3.66 bpw"),
    "iq3_s": Quant(3.44, LLAMA_CPP + ": 3.44 bpw"),
    "iq3_xs": Quant(3.3, LLAMA_CPP + ": 3.3 bpw"),
    "iq3_xxs": Quant(3.06, LLAMA_CPP + ": 3.06 bpw"),
    "q2_k": Quant(_from_size(2.96), LLAMA_CPP + ": 2.96G at Llama-3-8B"),
    "iq2_m": Quant(2.7, LLAMA_CPP + ": 2.7 bpw"),
    "iq2_s": Quant(2.5, LLAMA_CPP + ": 2.5 bpw"),
    "iq2_xs": Quant(2.31, LLAMA_CPP + ": 2.31 bpw"),
    "iq2_xxs": Quant(2.06, LLAMA_CPP + ": 2.06 bpw"),
    "iq1_m": Quant(1.75, LLAMA_CPP + ": 1.75 bpw"),
    "iq1_s": Quant(1.56, LLAMA_CPP + ": 1.56 bpw"),
    # vLLM / Hugging Face checkpoints
    "awq": Quant(4.25, "AWQ: 4-bit, 16-bit scale and zero per 128-weight group", True),
    "gptq": Quant(4.25, "GPTQ 4-bit: 16-bit scale and zero per 128-weight group", True),
    "int4": Quant(4.25, "4-bit weights, 16-bit group scales (W4A16)", True),
    "gptq_int8": Quant(8.25, "GPTQ 8-bit: 16-bit scale and zero per 128-weight group", True),
    "fp8": Quant(8.0, "FP8 weights (E4M3), per-tensor or per-channel scales", True),
    "int8": Quant(8.0, "INT8 weights (W8A8), per-channel scales", True),
}

# Other spellings of the same thing: llama.cpp's file types, vLLM's kernel variants.
SYNONYMS: dict[str, str] = {
    "f32": "fp32", "float32": "fp32", "f16": "fp16", "float16": "fp16", "half": "fp16",
    "bfloat16": "bf16", "q8": "q8_0", "q6": "q6_k", "q5_k": "q5_k_m", "q4_k": "q4_k_m",
    "q3_k": "q3_k_m", "awq_marlin": "awq", "gptq_marlin": "gptq", "gptq-int4": "gptq",
    "gptq-int8": "gptq_int8", "fbgemm_fp8": "fp8", "fp8-dynamic": "fp8", "w4a16": "int4",
    "w8a8": "int8", "w8a16": "int8", "marlin": "gptq",
}  # fmt: skip

# vLLM's compressed-tensors format says its scheme in the checkpoint, not in its name.
SCHEME_QUANTS = {"compressed-tensors", "compressed_tensors"}


def normalise(name: str | None) -> str | None:
    """The canonical quant name for ``name`` (any case, any known spelling), or None.

    Example:
        normalise("Q4_K_M")       # -> "q4_k_m"
        normalise("awq_marlin")   # -> "awq"
    """
    if not name:
        return None
    key = name.strip().lower()
    key = SYNONYMS.get(key, key)
    return key if key in QUANTS else None


def scheme_from_model(model: str) -> str | None:
    """For compressed-tensors: the scheme a repository name states (``-W4A16``, ``-FP8``...)."""
    lowered = model.lower()
    for marker, quant in (("w4a16", "int4"), ("int4", "int4"), ("w8a8", "int8"), ("int8", "int8"),
                          ("fp8", "fp8"), ("w8a16", "int8")):  # fmt: skip
        if marker in lowered:
            return quant
    return None


def known() -> list[str]:
    """Every accepted name, for error messages."""
    return sorted({*QUANTS, *SYNONYMS, *SCHEME_QUANTS})
