"""Keep the cloud aliases current (seed 001's free-tier treadmill).

:func:`check` compares each alias of the inventory with its provider's live model
list (OpenRouter's ``GET /api/v1/models``: ids, ``context_length``, ``pricing``,
input modalities, a data policy where given; or an OpenAI-style ``GET /v1/models``:
ids only) and reports per alias: present, retired, no longer free, context changed.
For a retired or no-longer-free alias it proposes a replacement of the same family
(same author, same model-name stem) that fits the alias's policy (free if it was
free, retains nothing if it must, sees images if it did). :func:`rewrite` changes
exactly those values in the inventory text, line by line, keeping everything else.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from hearth.inventory.model import CloudModel


@dataclass
class Live:
    """What a provider's list says about one model (None: the list does not say)."""

    id: str
    context: int | None = None
    free: bool | None = None
    retains_nothing: bool | None = None
    vision: bool | None = None


@dataclass
class Finding:
    """The check's verdict on one alias."""

    provider: str
    alias: str
    model_id: str
    status: str  # present | retired | no_longer_free | unreachable
    notes: list[str] = field(default_factory=list)
    replacement: Live | None = None
    new_context: int | None = None

    @property
    def changed(self) -> bool:
        """Whether the inventory should change (or cannot stay as it is)."""
        return self.status != "present" or self.new_context is not None


def _price_zero(v: Any) -> bool | None:
    try:
        return float(v) == 0.0
    except (TypeError, ValueError):
        return None


def parse_list(body: Any) -> dict[str, Live]:
    """The live list, keyed by model id, from either documented shape."""
    out: dict[str, Live] = {}
    data = body.get("data") if isinstance(body, dict) else None
    for m in data if isinstance(data, list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("id"), str):
            continue
        live = Live(m["id"])
        if isinstance(m.get("context_length"), int):
            live.context = m["context_length"]
        pricing = m.get("pricing")
        if isinstance(pricing, dict):
            p, c = _price_zero(pricing.get("prompt")), _price_zero(pricing.get("completion"))
            live.free = None if p is None or c is None else (p and c)
        dp = m.get("data_policy")
        if isinstance(dp, dict):
            live.retains_nothing = (dp.get("retains_prompts") is False
                                    and dp.get("training") is False)
        arch = m.get("architecture")
        if isinstance(arch, dict) and isinstance(arch.get("input_modalities"), list):
            live.vision = "image" in arch["input_modalities"]
        out[live.id] = live
    return out


def _family(mid: str) -> tuple[str, str]:
    author, _, name = mid.partition("/")
    stem = re.split(r"[-_.:\d]", name.split(":")[0], maxsplit=1)[0] or name
    return author, stem.lower()


def was_free(m: CloudModel) -> bool:
    """The alias is a free one (an OpenRouter ``:free`` id, or priced at zero)."""
    return m.id.endswith(":free") or (m.usd_per_mtok_in == 0 and m.usd_per_mtok_out == 0)


def propose(m: CloudModel, live: dict[str, Live]) -> Live | None:
    """The same-family model from the live list that best fits the alias's policy."""
    fam = _family(m.id)
    must_retain_nothing = m.retains_prompts is False and m.trains_on_prompts is not True
    cands = [
        c for c in live.values()
        if c.id != m.id and _family(c.id) == fam
        and (not was_free(m) or c.free is True)
        and (not must_retain_nothing or c.retains_nothing is True)
        and (not m.vision or c.vision is True)
    ]
    if not cands:
        return None
    return max(cands, key=lambda c: (difflib.SequenceMatcher(None, m.id, c.id).ratio(),
                                     c.context or 0))


def check(provider: str, models: dict[str, CloudModel], live: dict[str, Live]) -> list[Finding]:
    """One finding per alias of a provider."""
    out = []
    for alias, m in models.items():
        f = Finding(provider, alias, m.id, "present")
        got = live.get(m.id)
        if got is None:
            f.status = "retired"
            f.notes.append("not in the provider's live list (requests answer 404)")
        elif was_free(m) and got.free is False:
            f.status = "no_longer_free"
            f.notes.append("the provider now charges for it")
        if got is not None and m.context is not None and got.context is not None \
                and got.context != m.context:
            f.notes.append(f"context changed {m.context} -> {got.context}")
            f.new_context = got.context
        if f.status != "present":
            f.replacement = propose(m, live)
            if f.replacement is not None:
                f.new_context = f.replacement.context if m.context is not None else None
                f.notes.append(f"replace with {f.replacement.id}")
            else:
                f.notes.append("no same-family replacement fits the alias's policy")
        out.append(f)
    return out


_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s#:][^:#]*?):(?P<rest>.*)$")


def _blocks(lines: list[str], start: int, end: int, indent: int) -> dict[str, tuple[int, int]]:
    """Keys at exactly ``indent`` spaces in lines[start:end]: key -> (line, block end)."""
    found: list[tuple[str, int]] = []
    for i in range(start, end):
        m = _KEY.match(lines[i])
        if m and len(m["indent"]) == indent:
            found.append((m["key"].strip().strip("'\""), i))
    out = {}
    for n, (key, i) in enumerate(found):
        out[key] = (i, found[n + 1][1] if n + 1 < len(found) else end)
    return out


def _child_indent(lines: list[str], start: int, end: int) -> int | None:
    for i in range(start + 1, end):
        s = lines[i]
        if s.strip() and not s.lstrip().startswith("#"):
            return len(s) - len(s.lstrip())
    return None


def _set_value(line: str, old: str | None, new: str) -> str:
    m = _KEY.match(line)
    assert m is not None
    rest = m["rest"]
    value, hash_, comment = rest.partition(" #")
    pad = value[len(value.rstrip()):]  # the spaces before a trailing comment stay
    value = value.replace(old, new, 1) if old is not None and old in value else " " + new
    return f"{m['indent']}{m['key']}:{value.rstrip()}{pad}{hash_}{comment}"


def rewrite(text: str, findings: list[Finding]) -> tuple[str, list[int]]:
    """The inventory text with the replacements and new contexts written in; (text,
    the 1-based numbers of the lines that changed). Everything else stays as it was."""
    lines = text.split("\n")
    changed: list[int] = []
    top = _blocks(lines, 0, len(lines), 0)
    if "clouds" not in top:
        return text, changed
    c0, c1 = top["clouds"]
    pind = _child_indent(lines, c0, c1)
    providers = _blocks(lines, c0 + 1, c1, pind) if pind is not None else {}
    for f in findings:
        if f.replacement is None and f.new_context is None:
            continue
        if f.provider not in providers:
            continue
        p0, p1 = providers[f.provider]
        kind = _child_indent(lines, p0, p1)
        models = _blocks(lines, p0 + 1, p1, kind).get("models") if kind is not None else None
        if models is None:
            continue
        m0, m1 = models
        aind = _child_indent(lines, m0, m1)
        alias = _blocks(lines, m0 + 1, m1, aind).get(f.alias) if aind is not None else None
        if alias is None:
            continue
        a0, a1 = alias
        fields = {}
        find = _child_indent(lines, a0, a1)
        if find is not None and find > (aind or 0):
            fields = _blocks(lines, a0 + 1, a1, find)
        edits: list[tuple[int, str | None, str]] = []
        if f.replacement is not None:
            at = fields["id"][0] if "id" in fields else a0
            edits.append((at, f.model_id, f.replacement.id))
        if f.new_context is not None and "context" in fields:
            edits.append((fields["context"][0], None, str(f.new_context)))
        for at, old, new in edits:
            updated = _set_value(lines[at], old, new)
            if updated != lines[at]:
                lines[at] = updated
                changed.append(at + 1)
    return "\n".join(lines), sorted(changed)
