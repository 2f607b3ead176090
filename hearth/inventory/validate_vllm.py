"""Inventory checks for vLLM serves and single-purpose cards.

Each check yields ``(key path, message)``; :mod:`hearth.inventory.validate` turns
them into problems with file and line. The flags hearth accepts are those of the
pinned vLLM release (``vllm_version``, from group_data or ``settings:``), as its
own argument parser registers them (:mod:`hearth.vllm_flags`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hearth import vllm_flags
from hearth.inventory.model import Host, Inventory

QUIET_ENOUGH = ("WARNING", "ERROR", "CRITICAL")  # below WARNING vLLM logs prompts


def setting(inv: Inventory, host: Host, defaults: dict[str, Any], key: str) -> Any:
    """A setting as the deploy sees it: host settings, then the inventory's, then group_data."""
    if key in host.settings:
        return host.settings[key]
    if key in inv.settings:
        return inv.settings[key]
    if key in defaults:
        return defaults[key]
    from hearth.deploy_data import group_defaults

    return group_defaults().get(key)


def check_vllm(inv: Inventory, defaults: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Flags of the pinned release, quiet logs, start orders, units that do not collide."""
    from hearth.configs.vllm import unit_name

    for name, host in inv.hosts.items():
        serves = [(i, s) for i, s in enumerate(host.serves) if s.engine == "vllm"]
        if not serves:
            continue
        where = f"hosts.{name}.settings" if "vllm_version" in host.settings else "settings"
        version = str(setting(inv, host, defaults, "vllm_version"))
        try:
            recorded = vllm_flags.load(version)
        except KeyError:
            known = ", ".join(vllm_flags.recorded_versions())
            yield (f"{where}.vllm_version", f"no recorded `vllm serve` argument list for vLLM {version} "
                   f"(recorded: {known}); record it with hearth/vllm_flags/generate.py")
            continue
        level = str(setting(inv, host, defaults, "vllm_logging_level")).upper()
        if level not in QUIET_ENOUGH:
            yield ("settings.vllm_logging_level",
                   f"{level} is below WARNING: vLLM would write prompts to the journal")
        units: dict[str, str] = {}
        orders: dict[int, str] = {}
        for i, serve in serves:
            path = f"hosts.{name}.serves[{i}]"
            for flag, value in serve.flags.items():
                problem = vllm_flags.check_flag(recorded, flag, value)
                if problem:
                    yield (f"{path}.flags.{flag}", problem)
            unit = unit_name(serve)
            if unit in units:
                yield (f"{path}.name", f"its unit {unit} is also {units[unit]}'s; rename one")
            units.setdefault(unit, serve.name)
            if serve.start_order is not None:
                if serve.start_order in orders:
                    yield (f"{path}.start_order", f"{serve.start_order} is also {orders[serve.start_order]}'s "
                           "start_order; GPU services start one at a time, in a definite order")
                orders.setdefault(serve.start_order, serve.name)
            tp = serve.flags.get("tensor-parallel-size", 1)
            if isinstance(tp, int) and host.gpus and serve.gpu + tp > len(host.gpus):
                yield (f"{path}.flags.tensor-parallel-size", f"{tp} GPUs from gpu {serve.gpu} on, "
                       f"but this host has {len(host.gpus)}")


def check_dedicated_gpus(inv: Inventory) -> Iterator[tuple[str, str]]:
    """A dedicated (single-purpose) card holds exactly one served model (seed 002)."""
    for name, host in inv.hosts.items():
        for index, gpu in enumerate(host.gpus):
            if not gpu.dedicated:
                continue
            on_it = [s.name for s in host.serves if s.engine != "openai" and s.gpu == index]
            if len(on_it) > 1:
                yield (f"hosts.{name}.gpus[{index}]",
                       f"{gpu.model} is dedicated (one model per card) but serves {', '.join(on_it)}")
