"""Deterministic request classification: which route answers a request, and why.

Pure Python over precompiled regexes; no I/O. The order of precedence is:

1. ``X-Hearth-Route`` header, 2. pinned model (``<prefix>/<route>`` or a concrete
served model name), 3. ``metadata.hearth_route``, 4. keyword buckets (highest total
weight of distinct matched keywords; ties broken by ``routing.tie_break``), then
size promotion, else ``default_route``. Image presence overrides everything that
would land on a route without a vision upstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .config import GatewayConfig


class RoutingError(Exception):
    """A request names a route or model that does not exist."""

    def __init__(self, status: int, message: str, param: str | None, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


@dataclass(slots=True)
class Decision:
    """The outcome of classification (before capacity and fallback)."""

    route: str
    bucket: str
    reason: str
    pinned: bool = False
    upstreams: tuple[str, ...] | None = None  # a concrete-model pin
    has_image: bool = False
    est_tokens: int = 0
    scores: dict[str, float] | None = None  # the buckets' scores when keywords decided


def _kw_pattern(kw: str) -> str:
    parts = [re.escape(p) for p in kw.strip().split()]
    return r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"


def _content_text(content: Any, out: list[str]) -> bool:
    """Append text of a message content to ``out``; return True if it has an image."""
    if isinstance(content, str):
        out.append(content)
        return False
    img = False
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                t = part.get("type")
                if t == "image_url" or "image_url" in part:
                    img = True
                elif t in ("text", "input_text") or "text" in part:
                    txt = part.get("text")
                    if isinstance(txt, str):
                        out.append(txt)
            elif isinstance(part, str):
                out.append(part)
    return img


def extract(body: dict[str, Any], scope: str) -> tuple[str, int, bool]:
    """Return (text to classify, total prompt chars, has_image) of a request body.

    ``scope`` is ``routing.classify_scope``; ``""`` gathers no chat text to classify
    (for a request already pinned to a route: only its size and images matter).
    """
    msgs = body.get("messages")
    if isinstance(msgs, list):
        cls_txt: list[str] = []
        chars = 0
        has_image = False
        last_user: list[str] = []
        for m in msgs:
            if not isinstance(m, dict):
                continue
            buf: list[str] = []
            if _content_text(m.get("content"), buf):
                has_image = True
            if isinstance(m.get("images"), list) and m["images"]:  # Ollama-native images
                has_image = True
            chars += sum(map(len, buf))
            if not scope:  # a pinned request: only its size and images matter
                continue
            if m.get("role") == "user":
                last_user = buf
                if scope == "user":
                    cls_txt.extend(buf)
            if scope == "all":
                cls_txt.extend(buf)
        if scope == "last_user":
            cls_txt = last_user
        return "\n".join(cls_txt), chars, has_image
    for key in ("prompt", "input"):
        p = body.get(key)
        if isinstance(p, str):
            return p, len(p), bool(body.get("images"))
        if isinstance(p, list):
            txt = [x for x in p if isinstance(x, str)]
            return "\n".join(txt), sum(len(t) for t in txt), bool(body.get("images"))
    return "", 0, False


class Router:
    """A compiled routing policy."""

    def __init__(self, cfg: GatewayConfig) -> None:
        rt = cfg.routing
        self.cfg = cfg
        self.prefix = rt.alias_prefix.rstrip("/") + "/"
        self.auto_name = self.prefix + "auto"
        self.default_route = rt.default_route
        self.image_route = rt.image_route
        self.embedding_route = rt.embedding_route or rt.default_route
        self.scope = rt.classify_scope
        self.thresholds = list(rt.size_promotion.thresholds)
        self.promote = {b: list(v) for b, v in rt.size_promotion.promote.items()}
        order = list(rt.tie_break) + sorted(b for b in rt.buckets if b not in rt.tie_break)
        self.rank = {b: i for i, b in enumerate(order)}
        self.buckets: list[tuple[str, str, re.Pattern[str], dict[str, float]]] = []
        for b in order:
            bc = rt.buckets[b]
            kws = sorted(bc.keywords, key=len, reverse=True)
            pat = re.compile("|".join(f"({_kw_pattern(k)})" for k in kws), re.IGNORECASE)
            weights = {" ".join(k.lower().split()): w for k, w in bc.keywords.items()}
            self.buckets.append((b, bc.route, pat, weights))
        self.route_vision = {
            r: any(cfg.upstreams[u].vision for u in rc.upstreams) for r, rc in cfg.routes.items()
        }
        self.models: dict[str, tuple[str, ...]] = {}
        for name, u in cfg.upstreams.items():
            self.models[u.model] = (*self.models.get(u.model, ()), name)
        self.model_route: dict[str, str] = {}
        for rname, rc in cfg.routes.items():
            for u in rc.upstreams:
                self.model_route.setdefault(cfg.upstreams[u].model, rname)

    # -- classification -------------------------------------------------------------

    def score(self, text: str) -> dict[str, float]:
        """Score every bucket: the sum of weights of distinct keywords found."""
        scores: dict[str, float] = {}
        if not text:
            return scores
        for b, _route, pat, weights in self.buckets:
            found = {" ".join(m.group(0).lower().split()) for m in pat.finditer(text)}
            if found:
                scores[b] = sum(weights.get(k, 1.0) for k in found)
        return scores

    def tier(self, tokens: int) -> int:
        """Size tier: the number of thresholds the estimate exceeds."""
        return sum(1 for t in self.thresholds if tokens > t)

    def _auto(self, text: str, tokens: int) -> tuple[str, str, str, dict[str, float]]:
        scores = self.score(text)
        if scores:
            best = max(scores.items(), key=lambda kv: (kv[1], -self.rank[kv[0]]))[0]
            route = self.cfg.routing.buckets[best].route
            tied = [b for b, s in scores.items() if s == scores[best] and b != best]
            reason = f"bucket_match:{best}" + (f";tie_break_over:{','.join(sorted(tied))}"
                                                 if tied else "")
        else:
            best, route, reason = "unknown", self.default_route, "no_match:default_route"
        promo = self.promote.get(best)
        if promo:
            target = promo[self.tier(tokens)]
            if target != route:
                reason += f";size_promotion:{route}->{target}"
                route = target
        return best, route, reason, scores

    def resolve_model(self, model: str) -> tuple[str | None, tuple[str, ...] | None]:
        """Map a model name to (route pin, upstream pin); (None, None) for auto."""
        model = self.cfg.model_aliases.get(model, model)
        if not model or model == self.auto_name:
            return None, None
        if model.startswith(self.prefix):
            r = model[len(self.prefix):]
            if r in self.cfg.routes:
                return r, None
        ups = self.models.get(model)
        if ups:
            return self.model_route.get(model, ""), ups
        raise RoutingError(404, f"The model '{model}' does not exist", "model",
                           "model_not_found")

    def decide(
        self,
        body: dict[str, Any],
        header_route: str | None = None,
        embeddings: bool = False,
    ) -> Decision:
        """Classify one request body. Raises :class:`RoutingError` for bad pins."""
        pinned = self._pinned(body, header_route, embeddings)
        text, chars, has_image = extract(body, self.scope if pinned is None else "")
        tokens = chars // 4
        if pinned is None:
            bucket, route, reason, scores = self._auto(text, tokens)
            d = Decision(route, bucket, reason, scores=scores)
        else:
            d = pinned
        d.has_image, d.est_tokens = has_image, tokens
        if has_image:
            sees = (any(self.cfg.upstreams[u].vision for u in d.upstreams) if d.upstreams
                    else self.route_vision.get(d.route, False))
            if not d.pinned:
                d.route, d.bucket, d.reason = self.image_route, "image", "image_present"
            elif not sees:
                d.reason = f"image_overrides_pin:{d.route}"
                d.route, d.bucket, d.upstreams = self.image_route, "image", None
        return d

    def _pinned(self, body: dict[str, Any], header_route: str | None,
                embeddings: bool) -> Decision | None:
        """The decision a pin (header, model, metadata) or the embeddings route makes;
        None when the keyword buckets decide. Raises :class:`RoutingError`."""
        model = body.get("model")
        model = model if isinstance(model, str) else ""
        route_pin, up_pin = self.resolve_model(model)
        meta = body.get("metadata")
        meta_route = meta.get("hearth_route") if isinstance(meta, dict) else None
        if header_route:
            if header_route not in self.cfg.routes:
                raise RoutingError(400, f"X-Hearth-Route names an unknown route "
                                   f"'{header_route}'", "X-Hearth-Route", "route_not_found")
            return Decision(header_route, "pinned", "header_pin", pinned=True)
        if route_pin is not None:
            return Decision(route_pin, "pinned", "model_pin" if up_pin is None
                            else "model_pin:concrete", pinned=True, upstreams=up_pin)
        if isinstance(meta_route, str) and meta_route:
            if meta_route not in self.cfg.routes:
                raise RoutingError(400, f"metadata.hearth_route names an unknown route "
                                   f"'{meta_route}'", "metadata.hearth_route",
                                   "route_not_found")
            return Decision(meta_route, "pinned", "metadata_pin", pinned=True)
        if embeddings:
            return Decision(self.embedding_route, "embeddings", "embeddings_route")
        return None
