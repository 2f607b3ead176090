"""Inventory against reality: what a host really has, what changed, and what now fits.

``compare`` lists the differences per host and field (architecture, NIC MAC, GPU
count, model, VRAM, driver branch, power limit range). ``replan`` runs the VRAM
planner on the detected GPUs (the inventory's reserve and serving settings kept),
so a swapped card shows what its models now hold; ``refusals`` are the serving
settings that no longer fit: the deploy does not roll them out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hearth.facts.hardware import GpuFact, HardwareFact
from hearth.inventory.model import Gpu, Host, Inventory
from hearth.planner.vram import GpuPlan, plan_host

VRAM_TOLERANCE = 0.06  # cards report a little less than their nominal size (24 GB card: 23.6-24 GiB)


@dataclass(frozen=True)
class Drift:
    """One field that differs: ``where`` is an inventory key path."""

    host: str
    where: str
    inventory: str
    detected: str


def normalise_model(name: str) -> str:
    """'NVIDIA GeForce RTX 3090' and 'RTX 3090' compare equal."""
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    return " ".join(w for w in words if w not in ("nvidia", "geforce", "gpu"))


# Words that make a different card when one name has them and the other does not.
VARIANTS = {"ti", "super", "laptop", "mobile", "max", "q", "ada", "d", "lhr", "xt"}


def same_model(declared: str, detected: str) -> bool:
    """Equal names, or one inside the other with only non-variant words around it
    ('DGX Spark GB10' ~ 'NVIDIA GB10'; 'RTX 3060' !~ 'RTX 3060 Ti')."""
    a, b = normalise_model(declared), normalise_model(detected)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if f" {short} " not in f" {long} ":
        return False
    extra = set(long.split()) - set(short.split())
    return not extra & VARIANTS


def nvidia_gpus(host: Host) -> list[tuple[int, Gpu]]:
    return [(i, gpu) for i, gpu in enumerate(host.gpus) if gpu.vendor == "nvidia"]


def compare(inv: Inventory, name: str, fact: HardwareFact, driver_branch: str | None = None) -> list[Drift]:
    """Every difference between the inventory's host and what the host reports."""
    host = inv.hosts[name]
    out: list[Drift] = []
    if fact.arch and fact.arch != host.arch:
        out.append(Drift(name, f"hosts.{name}.arch", host.arch, fact.arch))
    if host.mac and fact.macs and host.mac not in fact.macs.values():
        out.append(Drift(name, f"hosts.{name}.mac", host.mac, ", ".join(sorted(set(fact.macs.values())))))
    declared = nvidia_gpus(host)
    if not declared:
        return out
    if fact.nvidia.status != "ok":
        out.append(Drift(name, f"hosts.{name}.gpus", f"{len(declared)} NVIDIA GPU(s)",
                         f"none readable ({fact.nvidia.message or fact.nvidia.status})"))  # fmt: skip
        return out
    detected = fact.nvidia.gpus
    if len(detected) != len(declared):
        out.append(Drift(name, f"hosts.{name}.gpus", f"{len(declared)} NVIDIA GPU(s)", f"{len(detected)}"))
    for (index, gpu), found in zip(declared, detected, strict=False):
        path = f"hosts.{name}.gpus[{index}]"
        if not same_model(gpu.model, found.name):
            out.append(Drift(name, f"{path}.model", gpu.model, found.name))
        vram_known = found.memory_mib and not gpu.unified_memory
        if vram_known and abs(found.vram_gb - gpu.vram_gb) > VRAM_TOLERANCE * gpu.vram_gb:
            out.append(Drift(name, f"{path}.vram_gb", f"{gpu.vram_gb:g}", f"{found.vram_gb:.1f}"))
        low, high, limit = found.power_min_w, found.power_max_w, gpu.power_limit_w
        if limit is not None and low is not None and high is not None and not low <= limit <= high:
            out.append(Drift(name, f"{path}.power_limit_w", f"{limit}", f"card allows {low:g}-{high:g} W"))
    if driver_branch and detected and not detected[0].driver.startswith(f"{driver_branch}."):
        out.append(Drift(name, "settings.nvidia_driver_branch", driver_branch, detected[0].driver))
    return out


def detected_host(host: Host, fact: HardwareFact) -> Host:
    """The inventory's host with its NVIDIA GPUs replaced by the detected ones.

    The inventory's reserve (``reserved_gb``) and unified-memory flag stay with the
    GPU index; a card whose memory nvidia-smi cannot tell (unified memory) keeps
    the declared size.
    """
    if fact.nvidia.status != "ok":
        return host
    others = [gpu for gpu in host.gpus if gpu.vendor != "nvidia"]
    declared = [gpu for gpu in host.gpus if gpu.vendor == "nvidia"]
    gpus = [_as_gpu(found, declared[i] if i < len(declared) else None) for i, found in enumerate(fact.nvidia.gpus)]
    return host.model_copy(update={"gpus": gpus + others})


def _as_gpu(found: GpuFact, declared: Gpu | None) -> Gpu:
    vram = round(found.vram_gb, 1) if found.memory_mib else (declared.vram_gb if declared else 0.0)
    reserved = min(declared.reserved_gb, vram) if declared else 0.0
    unified = declared.unified_memory if declared else False
    return Gpu(model=found.name, vram_gb=vram or 0.1, reserved_gb=reserved, unified_memory=unified,
               power_limit_w=declared.power_limit_w if declared else None)  # fmt: skip


@dataclass(frozen=True)
class Replan:
    host: str
    plans: list[GpuPlan]
    refusals: list[str]


def replan(inv: Inventory, name: str, fact: HardwareFact) -> Replan:
    """Plan the host's serves on the detected GPUs; list what no longer fits."""
    host = detected_host(inv.hosts[name], fact)
    plans, problems = plan_host(name, host, inv.models)
    refusals = [f"serves[{index}] ({inv.hosts[name].serves[index].name}): {message}" for index, message in problems]
    for plan in plans:
        for model in plan.models:
            refusals += [f"{model.serve} on gpu{plan.index} {plan.gpu.model}: {m}" for m in model.problems]
        if plan.headroom_gb < 0:
            names = " + ".join(f"{m.serve} {m.resident_gb:.1f}" for m in plan.models)
            refusals.append(
                f"gpu{plan.index} {plan.gpu.model}: {names} = {plan.used_gb:.1f} GiB > usable "
                f"{plan.gpu.usable_gb:.1f} GiB ({-plan.headroom_gb:.1f} GiB over)"
            )
    return Replan(name, plans, refusals)


def report(inv: Inventory, name: str, fact: HardwareFact, driver_branch: str | None = None) -> tuple[str, bool]:
    """(text, refuse): the drift per field, the re-plan, and whether serving must stop here."""
    drifts = compare(inv, name, fact, driver_branch)
    if not drifts:
        return "", False
    lines = [f"hearth: {name}: the hardware differs from the inventory"]
    lines += [f"  {d.where}: inventory {d.inventory!s}, detected {d.detected!s}" for d in drifts]
    if nvidia_gpus(inv.hosts[name]) and not (fact.nvidia.status == "ok" and fact.nvidia.gpus):
        why = fact.nvidia.message or ("nvidia-smi lists no GPU" if fact.nvidia.status == "ok" else fact.nvidia.status)
        lines.append(f"  refused: {name} has gpus: in the inventory but no NVIDIA GPU is detected ({why})")
        return "\n".join(lines), True
    result = replan(inv, name, fact)
    for plan in result.plans:
        models = ", ".join(f"{m.serve} {m.resident_gb:.1f}" for m in plan.models) or "nothing"
        lines.append(f"  re-plan gpu{plan.index} {plan.gpu.model} (usable {plan.gpu.usable_gb:.1f} GiB): "
                     f"{models}; headroom {plan.headroom_gb:.1f} GiB")  # fmt: skip
    if result.refusals:
        lines.append("  refused: these serving settings no longer fit the detected hardware:")
        lines += [f"    {r}" for r in result.refusals]
        lines.append(f"  fix the inventory (hosts.{name}.gpus / serves) or the hardware, then re-run")
    else:
        lines.append(f"  everything still fits; update hosts.{name} in the inventory to match")
    return "\n".join(lines), bool(result.refusals)
