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
    from hearth.configs.vllm import KV_DTYPES, unit_name

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
        extra, problems = extra_choices(inv, host, name, defaults, recorded)
        yield from problems
        level = str(setting(inv, host, defaults, "vllm_logging_level")).upper()
        if level not in QUIET_ENOUGH:
            yield ("settings.vllm_logging_level",
                   f"{level} is below WARNING: vLLM would write prompts to the journal")
        units: dict[str, str] = {}
        orders: dict[int, str] = {}
        for i, serve in serves:
            path = f"hosts.{name}.serves[{i}]"
            own = dict(extra)
            if "tool-parser-plugin" in serve.flags:  # the plugin registers its own parser names
                own["tool-call-parser"] = [*own.get("tool-call-parser", []), str(serve.flags.get("tool-call-parser"))]
            for flag, value in serve.flags.items():
                problem = vllm_flags.check_flag(recorded, flag, value, own)
                if problem:
                    yield (f"{path}.flags.{flag}", f"{problem}; serve {serve.name}")
            kv = KV_DTYPES.get(serve.kv_cache_dtype, serve.kv_cache_dtype)  # what hearth writes
            allowed = vllm_flags.allowed_values(recorded, "kv-cache-dtype", own)
            if allowed and kv not in allowed.choices:
                yield (f"{path}.kv_cache_dtype", f"{serve.kv_cache_dtype} is not a KV-cache dtype of vLLM {version}: "
                       f"--kv-cache-dtype must be one of {', '.join(allowed.choices)} (hearth also takes fp16 "
                       f"and bf16). vLLM {version}'s set: {allowed.source}. A build that takes more: "
                       f"settings vllm_extra_choices; serve {serve.name}")
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


def extra_choices(inv: Inventory, host: Host, name: str, defaults: dict[str, Any],
                  recorded: dict[str, Any]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """``vllm_extra_choices``: values this host's vLLM build takes beyond the release's
    (a fork, a plugin); each key a flag (or ``flag.key``) the release gives a fixed set."""
    where = f"hosts.{name}.settings" if "vllm_extra_choices" in host.settings else "settings"
    raw = setting(inv, host, defaults, "vllm_extra_choices") or {}
    if not isinstance(raw, dict):
        return {}, [(f"{where}.vllm_extra_choices", "a mapping of flag -> list of values, e.g. "
                     "{kv-cache-dtype: [turboquant_k8v4]}")]
    extra: dict[str, list[str]] = {}
    problems: list[tuple[str, str]] = []
    for flag, more in raw.items():
        if not isinstance(more, list) or not all(isinstance(v, str) and v for v in more):
            problems.append((f"{where}.vllm_extra_choices.{flag}", "a list of values (strings)"))
        elif vllm_flags.allowed_values(recorded, str(flag)) is None and \
                vllm_flags.allowed_keys(recorded, str(flag)) is None:
            problems.append((f"{where}.vllm_extra_choices.{flag}",
                             f"vLLM {recorded['vllm_version']} has no fixed set of values for {flag}, nor of keys: "
                             "nothing to extend"))
        else:
            extra[str(flag)] = more
    return extra, problems


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
