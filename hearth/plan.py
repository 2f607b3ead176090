"""`hearth plan`: the inventory as a person reads it, before anything is touched."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import pairwise

from hearth.inventory.groups import GROUPS
from hearth.inventory.model import Inventory
from hearth.plan_reach import reach_lines
from hearth.plan_tunnel import windows_reach_lines
from hearth.planner.vram import GpuPlan, ModelPlan, plan_host


def table(headers: list[str], rows: Iterable[list[str]]) -> list[str]:
    """Left-aligned plain-text table."""
    rows = [headers, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def host_lines(inv: Inventory) -> Iterator[str]:
    yield f"Hosts ({len(inv.hosts)}), overlay {inv.overlay.kind} {inv.overlay.cidr} ({inv.overlay.topology})"
    rows = []
    for name, host in inv.hosts.items():
        groups = [group for group, member in GROUPS.items() if member(host) and group not in ("linux", "windows")]
        roles = ", ".join(groups) or "-"
        if not host.managed:  # hearth never connects there: set up by hand, only routed to
            roles += " (managed: false, not deployed)"
        rows.append([name, host.address, str(host.overlay_ip or "-"), f"{host.os}/{host.arch}", roles])
    yield from table(["host", "address", "overlay", "os/arch", "roles"], rows)


def gpu_plans(inv: Inventory) -> list[GpuPlan]:
    return [plan for name, host in inv.hosts.items() for plan in plan_host(name, host, inv.models)[0]]


def vram_lines(inv: Inventory) -> Iterator[str]:
    yield "VRAM budget per GPU (GiB)"
    rows = []
    for plan in gpu_plans(inv):
        gpu = plan.gpu
        budget = f"{gpu.usable_gb:g} of {gpu.vram_gb:g}" + (" unified" if gpu.unified_memory else "")
        for model in plan.models:
            turns = plan.takes_turns() and model.engine == "ollama"
            rows.append([
                f"{plan.host}/gpu{plan.index}", gpu.model, budget, model.serve, model.engine, model.quant,
                str(model.context), f"{model.weights_gb:.1f}", f"{model.kv_gb:.1f}", f"{model.overhead_gb:.1f}",
                f"{model.resident_gb:.1f}" + (" (takes turns)" if turns else ""),
            ])
            budget = ""
        if plan.takes_turns():
            rows.append(["", "", "", f"largest {plan.max_loaded} loaded at once (Ollama's cap)",
                         "", "", "", "", "", "", f"{plan.used_gb:.1f}"])  # fmt: skip
        rows.append(["", "", "", "headroom", "", "", "", "", "", "", f"{plan.headroom_gb:.1f}"])
    yield from table(
        ["gpu", "card", "usable", "model", "engine", "quant", "ctx", "weights", "kv", "overhead", "resident"], rows
    )
    turns = list(turns_lines(inv))
    if turns:
        yield ""
        yield "Ollama models held at once (each set fits together; the others take turns)"
        yield from turns


def turns_lines(inv: Inventory) -> Iterator[str]:
    """Per card with two or more Ollama models: the sets its server can hold at once."""
    from hearth.planner.ollama_server import MODELS_PER_GPU

    plans = gpu_plans(inv)
    for plan in plans:
        ollama = plan.ollama_models()
        if len(ollama) < 2:
            continue
        host = inv.hosts[plan.host]
        said = any(s.max_loaded_models for s in host.serves if s.engine == "ollama")
        why = f"max_loaded_models {plan.max_loaded}" + ("" if said else f", Ollama's {MODELS_PER_GPU} per GPU")
        sets = plan.co_resident()
        card = f"{plan.host}/gpu{plan.index}"
        if len(sets) == 1 and len(sets[0]) == len(ollama):
            line = f"{' + '.join(m.serve for m in sets[0])}, all loaded together, {_total(sets[0])}"
        elif all(len(models) == 1 for models in sets):
            line = f"{' or '.join(models[0].serve for models in sets)}, one at a time"
        else:
            line = " | ".join(f"{' + '.join(m.serve for m in models)} ({_total(models)})" for models in sets)
            line = f"{max(len(models) for models in sets)} at a time: {line}"
        placed = {m.serve for models in sets for m in models}
        alone = [m.serve for m in ollama if m.serve not in placed]
        if alone:
            line += f"; {', '.join(alone)} fits nowhere even alone"
        others = sum(len(p.ollama_models()) for p in plans if p.host == plan.host and p.index != plan.index)
        if others and plan.max_loaded is not None and len(ollama) + others > plan.max_loaded:
            line += "; the cap counts the server's models on its other cards too"
        yield f"  {card}: {line} ({why})"
    yield from _cpu_turns_lines(inv)


def _cpu_turns_lines(inv: Inventory) -> Iterator[str]:
    """An Ollama server without a GPU: no VRAM to plan, only its cap."""
    from itertools import combinations

    from hearth.planner.ollama_server import max_loaded_models

    for name, host in inv.hosts.items():
        names = [s.name for s in host.serves if s.engine == "ollama"]
        if host.gpus or len(names) < 2:
            continue
        cap = max_loaded_models(host)
        if cap >= len(names):
            line = f"{' + '.join(names)}, all loaded together"
        elif cap == 1:
            line = f"{' or '.join(names)}, one at a time"
        else:
            line = f"{cap} at a time: " + " | ".join(" + ".join(c) for c in combinations(names, cap))
        yield f"  {name} (no GPU): {line} (max_loaded_models {cap})"


def _total(models: list[ModelPlan]) -> str:
    return f"{sum(m.resident_gb for m in models):.1f} GiB"


def routing_lines(inv: Inventory) -> Iterator[str]:
    routing = inv.routing
    if routing is None:
        return
    upstreams = {route: f"{host}/{serve.name}" for route, pairs in inv.route_upstreams().items()
                 for host, serve in pairs}
    order = " > ".join(routing.tie_break) if routing.tie_break else "none set: ties go to the bucket first by name"
    yield f"Routing (aliases {routing.alias_prefix}/<route>; tie-break {order})"
    rows = []
    for bucket, spec in routing.buckets.items():
        rows.append([bucket, spec.route, upstreams.get(spec.route, "?")])
    rows.append(["(nothing matched)", routing.default_route, upstreams.get(routing.default_route, "?")])
    if routing.image_route:
        rows.append(["(any image)", routing.image_route, upstreams.get(routing.image_route, "?")])
    if routing.embedding_route:
        rows.append(["(embeddings)", routing.embedding_route, upstreams.get(routing.embedding_route, "?")])
    yield from table(["bucket", "route", "upstream"], rows)
    yield ""
    rows = []
    for route, upstream in upstreams.items():
        policy = routing.routes.get(route)
        if policy is None:
            rows.append([route, upstream, "queue", "-", "-"])
            continue
        busy = policy.on_busy
        if policy.on_busy == "queue":
            busy += f" (max {policy.queue.max}, {policy.queue.timeout_s:g}s)"
        spill = " > ".join(policy.spill) or "-"
        failover = "TERMINAL: 503, never downgrades" if policy.terminal else (" > ".join(policy.failover) or "-")
        rows.append([route, upstream, busy, spill, failover])
    yield from table(["route", "upstream", "when busy", "spill chain", "failover chain"], rows)
    if routing.size_promotion:
        promotion = routing.size_promotion
        yield ""
        bands = _bands(promotion.thresholds)
        yield from table(["size promotion", *bands],
                         [[bucket, *routes] for bucket, routes in promotion.promote.items()])


def _bands(thresholds: list[int]) -> list[str]:
    edges = [f"{t // 1000}K" if t % 1000 == 0 else str(t) for t in thresholds]
    bands = [f"<= {edges[0]}"]
    bands += [f"{a}-{b}" for a, b in pairwise(edges)]
    return [*bands, f"> {edges[-1]}"]


def sleep_lines(inv: Inventory) -> Iterator[str]:
    sleepers = [(name, host) for name, host in inv.hosts.items() if host.sleep.sleeps]
    if not sleepers:
        return
    yield "Sleeping hosts"
    yield from table(
        ["host", "mac", "wake", "idle before sleep", "ready deadline", "keep-warm"],
        [[name, host.mac or "-", f"{host.sleep.wake} to {inv.lan.cidr.broadcast_address}",
          f"{host.sleep.idle_minutes} min", f"{host.sleep.ready_timeout_s:g} s",
          f"{host.sleep.keep_warm_minutes} min"] for name, host in sleepers],
    )


def cloud_lines(inv: Inventory) -> Iterator[str]:
    from hearth.plan_cloud import cloud_lines as lines

    yield from lines(inv)


def plan_text(inv: Inventory) -> str:
    """The whole plan as text."""
    sections = [host_lines, vram_lines, routing_lines, sleep_lines, cloud_lines, reach_lines, windows_reach_lines]
    blocks = ["\n".join(lines) for section in sections if (lines := list(section(inv)))]
    return f"Lab {inv.name}\n\n" + "\n\n".join(blocks) + "\n"
