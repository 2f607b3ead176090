"""Record the `vllm serve` arguments of a vLLM release, from the release's own parser.

vLLM builds its `serve` parser at import time from its config dataclasses
(``vllm.entrypoints.openai.cli_args.make_arg_parser``). This script imports the
release's pure-Python sources from its wheel, with every third-party module it
cannot have here (torch, transformers, CUDA extensions...) replaced by an inert
stand-in object, builds that very parser, and writes each option it registers:
names, whether it takes a value, the value's kind and choices.

Exact command that produced ``vllm-0.11.0.json`` (the wheel from PyPI, sha256 in
the output's ``source``):

    python3 -m pip download --no-deps --only-binary=:all: vllm==0.11.0 -d /tmp/vllm-rel
    python3 -m venv /tmp/vllm-gen && /tmp/vllm-gen/bin/pip install pydantic packaging \\
        typing_extensions pyyaml msgspec
    /tmp/vllm-gen/bin/python hearth/vllm_flags/generate.py \\
        /tmp/vllm-rel/vllm-0.11.0-cp38-abi3-manylinux1_x86_64.whl > hearth/vllm_flags/vllm-0.11.0.json

The stand-ins only let the modules import; the option set, types and choices are
vLLM's own (a field typed with a stubbed class is classified as vLLM would
classify any non-builtin class: a string). Standard library only apart from the
packages above; nothing here is imported by hearth at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import json
import sys
import tempfile
import types
import zipfile
from pathlib import Path
from typing import Any


class _Anything(type):
    """Metaclass of the inert stand-in: every attribute, call, index is itself."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Stub

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return _Stub

    def __getitem__(cls, key: Any) -> Any:
        return _Stub

    def __or__(cls, other: Any) -> Any:
        return _Stub

    __ror__ = __or__
    __mul__ = __or__
    __rmul__ = __or__
    __truediv__ = __or__

    def __add__(cls, other: Any) -> Any:
        return other if isinstance(other, str) else _Stub

    __radd__ = __add__

    def __iter__(cls) -> Any:
        return iter(())

    def __lt__(cls, other: Any) -> bool:
        return False

    __gt__ = __lt__

    def __le__(cls, other: Any) -> bool:
        return True

    __ge__ = __le__

    def __int__(cls) -> int:
        return 0

    __index__ = __int__
    __len__ = __int__

    def __float__(cls) -> float:
        return 0.0

    def __bool__(cls) -> bool:
        return False

    def __contains__(cls, item: Any) -> bool:
        return False

    def __enter__(cls) -> Any:
        return _Stub

    def __exit__(cls, *args: Any) -> bool:
        return False

    def __hash__(cls) -> int:
        return 0


class _Stub(metaclass=_Anything):
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.any_schema()


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any non-stdlib module no other finder has becomes an inert stub."""

    def __init__(self) -> None:
        self.stubbed: set[str] = set()

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name.split(".")[0] in sys.stdlib_module_names:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            try:
                if finder.find_spec(name, path, target) is not None:  # type: ignore[attr-defined]
                    return None
            except Exception:
                continue
        self.stubbed.add(name.split(".")[0])
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: Any) -> Any:
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: Any) -> None:
        return None


def _function_names(fn: Any, seen: set[int] | None = None) -> set[str]:
    """Names of a type callable and of the callables wrapped in its closure."""
    seen = seen if seen is not None else set()
    if fn is None or id(fn) in seen:
        return set()
    seen.add(id(fn))
    names = {getattr(fn, "__name__", type(fn).__name__)}
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:
            continue
        if callable(inner):
            names |= _function_names(inner, seen)
    return names


def _kind(action: argparse.Action) -> dict[str, Any]:
    """What an option takes, in terms hearth checks: flag / bool / int / float / json / str."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return {"kind": "bool"}
    if action.nargs == 0:
        return {"kind": "flag"}
    names = _function_names(action.type)
    if action.type is int or "human_readable_int" in names:
        kind = "int"
    elif action.type is float:
        kind = "float"
    elif names & {"parse_dataclass", "loads"}:
        kind = "json"
    elif "union_dict_and_str" in names:
        kind = "json_or_str"
    elif "int" in names:
        kind = "int"
    elif "float" in names:
        kind = "float"
    else:
        kind = "str"
    out: dict[str, Any] = {"kind": kind}
    if action.choices:
        out["choices"] = [str(choice) for choice in action.choices]
    if action.nargs not in (None, "?"):
        out["nargs"] = action.nargs
    if "_optional_type" in names:
        out["none_ok"] = True
    return out


def generate(wheel: Path) -> dict[str, Any]:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    version = wheel.name.split("-")[1]
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tmp, [n for n in archive.namelist() if n.endswith(".py")])
        sys.path.insert(0, tmp)
        finder = _StubFinder()
        sys.meta_path.append(finder)
        real_version = importlib.metadata.version

        def version_of(name: str) -> str:
            try:
                return real_version(name)
            except importlib.metadata.PackageNotFoundError:
                return {"torch": "2.8.0"}.get(name, "0.0.0")

        importlib.metadata.version = version_of  # type: ignore[assignment]
        import vllm.platforms as platforms  # type: ignore[import-not-found]

        # The CUDA platform (what hearth deploys to), not whatever the stubs would detect.
        platforms.resolve_current_platform_cls_qualname = lambda: "vllm.platforms.cuda.CudaPlatform"
        from vllm.entrypoints.openai.cli_args import make_arg_parser  # type: ignore[import-not-found]
        from vllm.utils import FlexibleArgumentParser  # type: ignore[import-not-found]

        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        # --quantization is a plain string to argparse; ModelConfig checks it against this list.
        from vllm.model_executor.layers.quantization import (  # type: ignore[import-not-found]
            QUANTIZATION_METHODS,
        )
    flags: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        long = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
        name = long.lstrip("-")
        flags[name] = {"dest": action.dest, **_kind(action)}
        for other in action.option_strings:
            if other != long:
                aliases[other] = name
    return {
        "vllm_version": version,
        "source": {"wheel": wheel.name, "sha256": digest},
        "generated_by": "hearth/vllm_flags/generate.py (vllm.entrypoints.openai.cli_args.make_arg_parser)",
        "positional": ["model_tag"],
        "stubbed_modules": sorted(finder.stubbed - {"vllm"}),
        "aliases": dict(sorted(aliases.items())),
        "flags": dict(sorted(flags.items())),
        "quantization_methods": sorted(QUANTIZATION_METHODS),
    }


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: generate.py vllm-<version>-*.whl > vllm-<version>.json")
    json.dump(generate(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
