"""The `vllm serve` arguments of a pinned vLLM release, and checks against them.

``vllm-<version>.json`` beside this file is generated from the release's own
argument parser by ``generate.py`` (its docstring has the exact command). Each
flag has a ``kind``: ``bool`` (``--x`` / ``--no-x``), ``flag`` (no value), ``int``,
``float``, ``str`` (maybe with ``choices``), ``json`` (a JSON document) or
``json_or_str``; ``nargs`` ``+`` takes one or more values.

The lab's vLLM stand-in parses its command line with the same file, so a flag the
release does not know fails there exactly as with the real one.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

from hearth.vllm_flags.values import PARSER_SOURCES, Keys, Values, release_keys, release_values, without_effect

HERE = Path(__file__).resolve().parent

# Flags hearth derives from the serve's own keys (model, name, context, share of
# the card, KV dtype, address): written under flags they would contradict them.
SET_BY_HEARTH = {
    "model": "model", "served-model-name": "name", "max-model-len": "context",
    "gpu-memory-utilization": "gpu_memory_utilization", "kv-cache-dtype": "kv_cache_dtype",
    "host": "the overlay address", "port": "port", "uds": "the overlay address",
}  # fmt: skip
# Flags that would put a secret on the command line (visible in ps and the journal).
SECRET_FLAGS = {"api-key": "VLLM_API_KEY in env (a secret reference) instead"}


def recorded_versions() -> list[str]:
    return sorted(p.stem.removeprefix("vllm-") for p in HERE.glob("vllm-*.json"))


@cache
def load(version: str) -> dict[str, Any]:
    """The recorded argument list of vLLM ``version``; KeyError if none is recorded.

    Example:
        load("0.11.0")["flags"]["max-model-len"]  # {"dest": "max_model_len", "kind": "int"}
    """
    path = HERE / f"vllm-{version.split('+')[0]}.json"  # a local label (0.11.0+mirror) is the same release
    if not path.exists():
        raise KeyError(version)
    return json.loads(path.read_text())


def _scalar_ok(kind: str, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("json", "json_or_str") and isinstance(value, dict | list):
        return True
    if kind == "json" and isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return False
        return True
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def allowed_values(recorded: dict[str, Any], name: str, extra: dict[str, list[str]] | None = None) -> Values | None:
    """The fixed set of values the release takes for ``name`` (a flag, or ``flag.key`` of a
    JSON-valued one), plus a build's own from ``extra``; None when the value is free.

    Example:
        allowed_values(load("0.11.0"), "kv-cache-dtype").choices  # ('auto', 'bfloat16', 'fp8', ...)
    """
    version = recorded["vllm_version"]
    spec = recorded["flags"].get(name.split(".")[0], {})
    found: Values | None = None
    if "." not in name and spec.get("choices"):
        found = Values(tuple(spec["choices"]), PARSER_SOURCES.get(name, f"the argument parser's choices of --{name}"))
    elif name in ("quantization", "speculative-config.quantization") and recorded.get("quantization_methods"):
        found = Values(tuple(recorded["quantization_methods"]), PARSER_SOURCES["quantization"])
    else:
        found = release_values(version).get(name)
    more = tuple(str(v) for v in (extra or {}).get(name, []))
    if found is None:
        return Values(more, "settings vllm_extra_choices") if more else None
    return Values(found.choices + tuple(v for v in more if v not in found.choices), found.source, found.any_case)


def allowed_keys(recorded: dict[str, Any], name: str, extra: dict[str, list[str]] | None = None) -> Keys | None:
    """The keys the release reads in the mapping at ``name`` (a JSON-valued flag, or ``flag.key``
    for a mapping in it), plus a build's own from ``extra``; None when its keys are free.

    Example:
        "pass_config" in allowed_keys(load("0.11.0"), "compilation-config").keys  # True
    """
    found = release_keys(recorded["vllm_version"]).get(name)
    more = tuple(str(v) for v in (extra or {}).get(name, []))
    if found is None:
        return Keys(more, "settings vllm_extra_choices") if more else None
    return Keys(found.keys + tuple(k for k in more if k not in found.keys), found.source, found.by, found.needs)


def _not_one_of(recorded: dict[str, Any], name: str, item: Any, allowed: Values) -> str:
    flag = "--" + name.replace(".", " ", 1) if "." in name else f"--{name}"
    return (f"{flag} must be one of {', '.join(allowed.choices)} (got {item!r}). vLLM {recorded['vllm_version']}'s "
            f"set: {allowed.source}. A build that takes more: settings vllm_extra_choices")


def _document(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def check_flag(recorded: dict[str, Any], name: str, value: Any,
               extra: dict[str, list[str]] | None = None) -> str | None:
    """Why ``name: value`` under a serve's ``flags`` is wrong for this release, or None.

    ``extra``: values a host's own vLLM build takes beyond the release's (``vllm_extra_choices``).
    """
    version = recorded["vllm_version"]
    flags = recorded["flags"]
    if name.startswith("-"):
        return "write the flag without leading dashes (e.g. enable-prefix-caching)"
    if name in SET_BY_HEARTH:
        return f"set by hearth from the serve's {SET_BY_HEARTH[name]}; remove it"
    if name in SECRET_FLAGS:
        return f"would put a secret on the command line; use {SECRET_FLAGS[name]}"
    if name.startswith("no-") and name[3:] in flags and flags[name[3:]]["kind"] == "bool":
        return f"write {name[3:]}: false"
    spec = flags.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(flags), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"vLLM {version} has no --{name}{hint}"
    if name in without_effect(version):
        return (f"--{name} is deprecated in vLLM {version} and has no effect there (nothing reads it); "
                f"write {without_effect(version)[name]}")
    kind = spec["kind"]
    if kind == "bool" and not isinstance(value, bool):
        return f"--{name} is a switch: write true or false (got {value!r})"
    if kind == "flag" and value is not True:
        return f"--{name} takes no value: write true, or remove it (got {value!r})"
    if kind in ("bool", "flag"):
        return None
    values = value if isinstance(value, list) and spec.get("nargs") == "+" else [value]
    allowed = allowed_values(recorded, name, extra)
    for item in values:
        if not _scalar_ok(kind, item):
            what = {"json": "a JSON document", "json_or_str": "JSON or a string"}.get(kind, f"a {kind}")
            return f"--{name} takes {what} (got {item!r})"
        if allowed and not isinstance(item, dict | list) and not allowed.takes(item):
            if name == "quantization":
                why = _not_one_of(recorded, name, item, allowed)
                return f"vLLM {version} has no quantization method {item!r}: {why}"
            return _not_one_of(recorded, name, item, allowed)
    document = _document(value) if kind in ("json", "json_or_str") else None
    if isinstance(document, dict):
        return _check_mapping(recorded, name, document, extra)
    return None


def _check_mapping(recorded: dict[str, Any], path: str, document: dict[str, Any],
                   extra: dict[str, list[str]] | None) -> str | None:
    """Keys the release reads, values from its fixed sets, the keys a kind needs; nested mappings too."""
    version = recorded["vllm_version"]
    flag, _, inner = path.partition(".")
    where = f"--{flag}" + (f" {inner}" if inner else "")
    keys = allowed_keys(recorded, path, extra)
    if keys:
        for key in document:
            if key not in keys.keys:
                close = difflib.get_close_matches(str(key), list(keys.keys), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                return (f"{where} has no key {key!r} in vLLM {version}{hint}; it reads {', '.join(keys.keys)}. "
                        f"vLLM {version}'s keys: {keys.source}. A build that reads more: settings vllm_extra_choices")
        problem = _needs(where, document, keys, version)
        if problem:
            return problem
    for key, item in document.items():
        values = allowed_values(recorded, f"{path}.{key}", extra)
        if values and item is not None and not values.takes(item):
            return _not_one_of(recorded, f"{path}.{key}", item, values)
        if isinstance(item, dict):
            problem = _check_mapping(recorded, f"{path}.{key}", item, extra)
            if problem:
                return problem
    return None


def _needs(where: str, document: dict[str, Any], keys: Keys, version: str) -> str | None:
    """A mapping whose kind (``keys.by``) needs keys: the kind named once, its keys present."""
    if not keys.by or not document:
        return None
    kinds = {str(document[k]) for k in keys.by if k in document}
    source = keys.source.split(",")[0]
    if not kinds:
        return f"{where} needs {' or '.join(keys.by)} (the kind): vLLM {version} refuses it without ({source})"
    if len(kinds) > 1:
        return (f"{where}: {' and '.join(f'{k} {document[k]!r}' for k in keys.by)} disagree "
                f"(vLLM {version} refuses that); write one")
    kind = kinds.pop()
    for group in keys.needs.get(kind, ()):
        if not any(k in document for k in group):
            return (f"{where} {kind} needs {' or '.join(group)}: vLLM {version} reads it without a default "
                    f"({source}); the mapping replaces the model's own, so write it here")
    return None


def argument(value: Any) -> str:
    """One flag value as vLLM reads it: JSON for mappings/lists, plain text otherwise."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def flag_args(recorded: dict[str, Any], flags: dict[str, Any]) -> list[str]:
    """``flags:`` as vLLM command-line arguments, in the inventory's order."""
    args: list[str] = []
    for name, value in flags.items():
        kind = recorded["flags"].get(name, {}).get("kind")
        if kind == "bool":
            args.append(f"--{name}" if value else f"--no-{name}")
        elif kind == "flag":
            args.append(f"--{name}")
        elif isinstance(value, list) and recorded["flags"][name].get("nargs") == "+":
            args += [f"--{name}", *(argument(item) for item in value)]
        else:
            args += [f"--{name}", argument(value)]
    return args
