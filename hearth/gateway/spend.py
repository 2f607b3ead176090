"""Token usage and spend per client, route and model; daily budgets.

Every answer is counted: from the upstream's ``usage`` object when it sends one
(JSON answers; the last SSE event of a stream with ``stream_options.include_usage``),
otherwise estimated (prompt: characters / 4; completion: one token per streamed
event, or characters / 4 of a JSON answer's text). Cloud answers get a cost from the
alias's price (USD per million tokens, in and out) when the inventory records one.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from .cloudstate import runtime

if TYPE_CHECKING:
    from .config import ClientCfg, CloudModelCfg
    from .state import GatewayState


def usage_of(obj: Any) -> dict[str, Any] | None:
    """The ``usage`` object of a decoded answer (OpenAI or Ollama-native counts)."""
    if not isinstance(obj, dict):
        return None
    u = obj.get("usage")
    if isinstance(u, dict):
        return u
    if "prompt_eval_count" in obj or "eval_count" in obj:  # Ollama-native final object
        return {"prompt_tokens": obj.get("prompt_eval_count") or 0,
                "completion_tokens": obj.get("eval_count") or 0}
    return None


_DECODER = json.JSONDecoder()


def usage_in_json(raw: bytes) -> dict[str, Any] | None:
    """``usage`` of a JSON answer body (None if it has none or is not JSON).

    Only the ``usage`` object is decoded (found from the end of the body), not the
    whole answer: this runs for every answer.
    """
    end = len(raw)
    while (i := raw.rfind(b'"usage"', 0, end)) >= 0:
        end = i
        rest = raw[i + 7:i + 64].lstrip()
        if not rest.startswith(b":") or not rest[1:].lstrip().startswith(b"{"):
            continue  # the word inside a string, or a null usage
        j = raw.find(b"{", i)
        try:
            u, _ = _DECODER.raw_decode(raw[j:].decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(u, dict) and ("prompt_tokens" in u or "completion_tokens" in u):
            return u
    if b'"eval_count"' not in raw:
        return None
    try:
        u = usage_of(json.loads(raw))
    except ValueError:
        return None
    return u if isinstance(u, dict) else None


def usage_in_stream_tail(tail: bytes) -> dict[str, Any] | None:
    """``usage`` of the last SSE event (or NDJSON line) carrying one in ``tail``."""
    if b'"usage"' not in tail and b'"eval_count"' not in tail:
        return None
    for line in reversed(tail.split(b"\n")):
        line = line.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
        if line.startswith(b"{") and (b'"usage"' in line or b'"eval_count"' in line):
            try:
                u = usage_of(json.loads(line))
            except ValueError:
                continue
            if u:
                return u
    return None


def _text_chars(raw: bytes) -> int:
    try:
        obj = json.loads(raw)
    except ValueError:
        return len(raw)
    n = 0
    for ch in obj.get("choices") or [] if isinstance(obj, dict) else []:
        if isinstance(ch, dict):
            msg = ch.get("message")
            txt = msg.get("content") if isinstance(msg, dict) else ch.get("text")
            n += len(txt) if isinstance(txt, str) else 0
    return n


def account(st: GatewayState, ctx: Any, model: str, usage: dict[str, Any] | None,
            counted_completion: int, price: CloudModelCfg | None = None) -> None:
    """Count one answer's tokens (and cost) for ``ctx.client`` on ``ctx.route``."""
    rt = runtime(st)
    client, route = ctx.client or "-", ctx.route or "-"
    prompt = completion = 0
    source = "counted"
    if usage:
        p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(p, int) or isinstance(c, int):
            prompt, completion, source = int(p or 0), int(c or 0), "usage"
    if source == "counted":
        prompt, completion = ctx.est_tokens, counted_completion
    rt.token_child(client, route, model, "prompt", source).inc(prompt)
    rt.token_child(client, route, model, "completion", source).inc(completion)
    usd = 0.0
    if price is not None and (price.usd_per_mtok_in is not None
                              or price.usd_per_mtok_out is not None):
        usd = (prompt * (price.usd_per_mtok_in or 0.0)
               + completion * (price.usd_per_mtok_out or 0.0)) / 1e6
        rt.usd.labels(client, route, model).inc(usd)
    if ctx.client:
        s = rt.client_spend(ctx.client)
        s.tokens += prompt + completion
        s.usd += usd


def account_json(st: GatewayState, ctx: Any, model: str, raw: bytes,
                 price: CloudModelCfg | None = None) -> None:
    """Count a whole JSON answer."""
    usage = usage_in_json(raw)
    account(st, ctx, model, usage, 0 if usage else _text_chars(raw) // 4, price)


def check_budget(st: GatewayState, name: str, client: ClientCfg | None) -> None:
    """Raise a 429 :class:`~.body.Reject` when the client spent its daily budget."""
    if client is None:
        return
    from .body import Reject  # body imports the proxy, which imports this module
    b = client.budget
    if b.tokens_per_day is None and b.usd_per_day is None:
        return
    rt = runtime(st)
    s = rt.client_spend(name)
    if b.tokens_per_day is not None and s.tokens >= b.tokens_per_day:
        rt.over_budget.labels(name, "tokens").inc()
        raise Reject(429, f"Client '{name}' spent its budget of {b.tokens_per_day} tokens "
                          f"today ({s.tokens} used; clients.{name}.budget.tokens_per_day); "
                          "it renews at 00:00 UTC", None, "budget_exceeded",
                     retry_after=_to_midnight())
    if b.usd_per_day is not None and s.usd >= b.usd_per_day:
        rt.over_budget.labels(name, "usd").inc()
        raise Reject(429, f"Client '{name}' spent its budget of ${b.usd_per_day:g} today "
                          f"(${s.usd:.4f} used; clients.{name}.budget.usd_per_day); it "
                          "renews at 00:00 UTC", None, "budget_exceeded",
                     retry_after=_to_midnight())


def _to_midnight() -> float:
    now = time.time()
    return 86400.0 - now % 86400.0
