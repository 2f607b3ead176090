"""Cloud runtime state that outlives a reload: per-alias limits and availability,
per-client spend, and their Prometheus metrics.

Limits are counted by the gateway itself, per alias across all clients, in rolling
windows (a minute, a day): a rolling day never holds more calls than the provider's
calendar day, so the gateway answers 429 before the provider's quota is spent.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .config import CloudModelCfg
    from .state import GatewayState

_ATTR = "_cloud_runtime"
DAY_S = 86400.0


class Window:
    """At most ``limit`` events in any ``span`` seconds (timestamps kept, bounded)."""

    def __init__(self, limit: int, span: float) -> None:
        self.limit, self.span = limit, span
        self.stamps: deque[float] = deque()

    def wait(self, now: float) -> float:
        """0 if one more event fits now, else seconds until one does."""
        while self.stamps and self.stamps[0] <= now - self.span:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return self.stamps[0] + self.span - now

    def add(self, now: float) -> None:
        """Count one event."""
        self.stamps.append(now)


@dataclass
class AliasState:
    """One alias's windows and whether the provider still serves it."""

    minute: Window | None = None
    day: Window | None = None
    unavailable: str | None = None
    since: float | None = None

    def configure(self, m: CloudModelCfg) -> None:
        """Follow the alias's limits (a changed limit starts a new window)."""
        if m.per_minute is None:
            self.minute = None
        elif self.minute is None or self.minute.limit != m.per_minute:
            self.minute = Window(m.per_minute, 60.0)
        if m.per_day is None:
            self.day = None
        elif self.day is None or self.day.limit != m.per_day:
            self.day = Window(m.per_day, DAY_S)

    def take(self, now: float) -> tuple[float, str]:
        """Reserve one call: (0, "") if allowed, else (seconds to wait, which window)."""
        for name, w in (("minute", self.minute), ("day", self.day)):
            if w is not None:
                wait = w.wait(now)
                if wait > 0:
                    return wait, name
        for w in (self.minute, self.day):
            if w is not None:
                w.add(now)
        return 0.0, ""


@dataclass
class ClientSpend:
    """Tokens and money one client spent on the current UTC day."""

    day: int = 0
    tokens: int = 0
    usd: float = 0.0

    def roll(self, today: int) -> None:
        """Start a new day when the UTC date changed."""
        if today != self.day:
            self.day, self.tokens, self.usd = today, 0, 0.0


def utc_day(now: float | None = None) -> int:
    """Days since the epoch, UTC."""
    return int((time.time() if now is None else now) // DAY_S)


class _AvailCollector(Collector):
    def __init__(self, rt: CloudRuntime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("hearth_cloud_alias_available",
                              "1 unless the provider answered 404 for the alias",
                              labels=["provider", "alias"])
        for ref in self.rt.refs():
            p, _, a = ref.partition("/")
            g.add_metric([p, a], 0.0 if self.rt.alias(ref).unavailable else 1.0)
        yield g


@dataclass
class CloudRuntime:
    """Everything cloud-related the gateway keeps across requests and reloads."""

    st: Any
    aliases: dict[str, AliasState] = field(default_factory=dict)
    spend: dict[str, ClientSpend] = field(default_factory=dict)
    _children: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        reg = self.st.metrics.registry
        self.tokens = Counter("hearth_tokens", "Tokens per client, route and model "
                              "(source: usage = the upstream's count, counted = estimated)",
                              ["client", "route", "model", "kind", "source"], registry=reg)
        self.usd = Counter("hearth_spend_usd", "Cost of cloud answers from the provider's "
                           "price", ["client", "route", "model"], registry=reg)
        self.fallbacks = Counter("hearth_cloud_fallbacks", "Routes served by their cloud "
                                 "fallback", ["route", "alias", "why"], registry=reg)
        self.limited = Counter("hearth_cloud_limited", "Cloud calls refused by the gateway's "
                               "own limit for an alias", ["provider", "alias", "window"],
                               registry=reg)
        self.over_budget = Counter("hearth_budget_refused", "Requests refused: client over "
                                   "its daily budget", ["client", "budget"], registry=reg)
        reg.register(_AvailCollector(self))

    def token_child(self, *labels: str) -> Any:
        """The ``hearth_tokens`` child for these labels (cached: called per answer)."""
        child = self._children.get(labels)
        if child is None:
            if len(self._children) > 10000:  # bounded: labels come from the config
                self._children.clear()
            child = self._children[labels] = self.tokens.labels(*labels)
        return child

    def refs(self) -> list[str]:
        """Every configured alias as ``<provider>/<alias>``."""
        return [f"{p}/{a}" for p, pc in self.st.cfg.clouds.items() for a in pc.models]

    def alias(self, ref: str) -> AliasState:
        """The state of one alias (created on first use)."""
        s = self.aliases.get(ref)
        if s is None:
            s = self.aliases[ref] = AliasState()
        return s

    def mark_unavailable(self, ref: str, why: str) -> None:
        """The provider no longer serves the alias (until a call succeeds again)."""
        s = self.alias(ref)
        if s.unavailable is None:
            s.since = time.time()
        s.unavailable = why

    def mark_available(self, ref: str) -> None:
        """A call to the alias succeeded."""
        s = self.alias(ref)
        s.unavailable, s.since = None, None

    def client_spend(self, client: str) -> ClientSpend:
        """Today's spend of one client."""
        s = self.spend.get(client)
        if s is None:
            s = self.spend[client] = ClientSpend(day=utc_day())
        s.roll(utc_day())
        return s

    def snapshot(self) -> list[dict[str, Any]]:
        """Per alias: availability and the calls counted in its windows (admin API)."""
        out = []
        now = time.monotonic()
        for ref in self.refs():
            p, _, a = ref.partition("/")
            m = self.st.cfg.clouds[p].models[a]
            s = self.alias(ref)
            s.configure(m)
            row: dict[str, Any] = {"alias": ref, "provider_model": m.id,
                                   "available": s.unavailable is None,
                                   "unavailable_reason": s.unavailable,
                                   "unavailable_since": s.since}
            for name, w, lim in (("minute", s.minute, m.per_minute), ("day", s.day, m.per_day)):
                if w is not None:
                    w.wait(now)
                    row[f"calls_last_{name}"] = len(w.stamps)
                row[f"per_{name}"] = lim
            out.append(row)
        return out


def runtime(st: GatewayState) -> CloudRuntime:
    """The gateway's cloud runtime (made on first use, kept across reloads)."""
    rt = getattr(st, _ATTR, None)
    if rt is None:
        rt = CloudRuntime(st)
        setattr(st, _ATTR, rt)
    return rt
