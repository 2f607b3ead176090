"""`hearth plan`: the inventory as a person reads it, before anything is touched."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import pairwise

from hearth.inventory.groups import GROUPS
from hearth.inventory.model import Inventory
from hearth.plan_reach import reach_lines
from hearth.plan_tunnel import windows_reach_lines
from hearth.planner.vram import GpuPlan, plan_host


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
