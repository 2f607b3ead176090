"""Prometheus metrics (one registry per gateway instance)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .config import GpuCfg, RouteCfg
from .upstreams import Upstream
from .wakes import WakeTracker

_LAT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _UpstreamCollector(Collector):
    """In-flight, cap, queue and state per upstream, read at scrape time (no per-request cost)."""

    def __init__(self, get: Callable[[], dict[str, Upstream]]) -> None:
        self.get = get

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        ups = self.get()
        infl = GaugeMetricFamily("hearth_upstream_in_flight", "Requests in flight",
                                 labels=["upstream"])
        cap = GaugeMetricFamily("hearth_upstream_cap", "Concurrency cap (slots)",
                                labels=["upstream"])
        q = GaugeMetricFamily("hearth_upstream_queued", "Requests queued", labels=["upstream"])
        st = GaugeMetricFamily("hearth_upstream_up", "1 if usable now", labels=["upstream",
                                                                                  "state"])
        loaded = GaugeMetricFamily("hearth_upstream_model_loaded",
                                   "1 if the engine holds the model now (Ollama /api/ps)",
                                   labels=["upstream", "model"])
        swaps = CounterMetricFamily("hearth_upstream_model_swaps",
                                    "Requests that made a shared server swap to this model",
                                    labels=["upstream"])
        swap_s = GaugeMetricFamily("hearth_upstream_last_swap_seconds",
                                   "Unload + load + first token of the last swap",
                                   labels=["upstream"])
        for name, u in ups.items():
            infl.add_metric([name], u.in_flight)
            cap.add_metric([name], u.slots)
            q.add_metric([name], len(u.waiters))
            st.add_metric([name, u.state], 1.0 if u.usable() else 0.0)
            if u.loaded is not None:
                loaded.add_metric([name, u.cfg.model], 1.0 if u.loaded else 0.0)
            if u.group is not None:
                swaps.add_metric([name], u.swaps)
                if u.last_swap_s is not None:
                    swap_s.add_metric([name], u.last_swap_s)
        yield from (infl, cap, q, st, loaded, swaps, swap_s)


class _GpuCollector(Collector):
    """Which upstreams share which card (labels as node telemetry's ``hearth_gpu_*``:
    ``host``, ``gpu`` = index, so the two join) and the requests running on each card."""

    def __init__(self, get_ups: Callable[[], dict[str, Upstream]],
                 get_gpus: Callable[[], dict[str, GpuCfg]]) -> None:
        self.get_ups, self.get_gpus = get_ups, get_gpus

    def collect(self) -> Iterator[GaugeMetricFamily]:
        on = GaugeMetricFamily("hearth_upstream_gpu",
                               "1 for the card the VRAM plan places the upstream's model on",
                               labels=["upstream", "host", "gpu", "engine"])
        infl = GaugeMetricFamily("hearth_gpu_upstream_in_flight",
                                 "Requests in flight on the upstreams placed on the card",
                                 labels=["host", "gpu"])
        from .cards import card_labels

        gpus = self.get_gpus()
        per: dict[str, int] = dict.fromkeys(gpus, 0)
        for name, u in self.get_ups().items():
            if u.cfg.gpu is not None:
                on.add_metric([name, *card_labels(u.cfg.gpu, gpus.get(u.cfg.gpu)), u.cfg.engine], 1.0)
                per[u.cfg.gpu] = per.get(u.cfg.gpu, 0) + u.in_flight
        for card, n in per.items():
            infl.add_metric(list(card_labels(card, gpus.get(card))), n)
        yield from (on, infl)


class _RouteCollector(Collector):
    """hearth_route_upstream{route,upstream,terminal} = 1: which upstreams serve which
    route, for alerts per route (a terminal route with no usable upstream)."""

    def __init__(self, get: Callable[[], dict[str, RouteCfg]]) -> None:
        self.get = get

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("hearth_route_upstream",
                              "1 for each upstream serving a route (terminal: nothing falls back from it)",
                              labels=["route", "upstream", "terminal"])
        for route, rc in self.get().items():
            for up in rc.upstreams:
                g.add_metric([route, up, "true" if rc.terminal else "false"], 1.0)
        yield g


class Metrics:
    """All gateway metrics."""

    def __init__(self, get_upstreams: Callable[[], dict[str, Upstream]],
                 get_routes: Callable[[], dict[str, RouteCfg]] | None = None,
                 get_gpus: Callable[[], dict[str, GpuCfg]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hearth_requests", "Requests by route, bucket and status",
                                ["route", "bucket", "status"], registry=r)
        self.latency = Histogram("hearth_request_latency_seconds", "Request latency",
                                 ["route"], buckets=_LAT_BUCKETS, registry=r)
        self.ttft = Histogram("hearth_ttft_seconds", "Time to first token (streaming)",
                              ["route"], buckets=_LAT_BUCKETS, registry=r)
        self.fallbacks = Counter("hearth_fallbacks", "Spills, failovers and drain redirects",
                                 ["kind", "from_route", "to_route"], registry=r)
        self.wakes = Counter("hearth_wakes", "Wake-on-LAN magic packets sent", ["upstream"],
                             registry=r)
        self.cloud = Counter("hearth_cloud_escalations", "Cloud escalations",
                             ["provider", "model", "status"], registry=r)
        self.upstream_errors = Counter("hearth_upstream_errors", "Upstream failures",
                                       ["upstream", "kind"], registry=r)
        self.refused = Counter("hearth_connections_refused",
                               "Client connections closed by a limit (limits.*)",
                               ["reason"], registry=r)
        r.register(_UpstreamCollector(get_upstreams))
        r.register(_RouteCollector(get_routes or dict))
        r.register(_GpuCollector(get_upstreams, get_gpus or dict))
        self.wake = WakeTracker(r)  # failed wakes in a row, cold starts (wakes.py)
        # labels() validates and locks on every call; a child never changes identity
        # (nothing here calls remove()), so the per-request ones are looked up once.
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self._ttft: dict[str, Histogram] = {}

    def connection_refused(self, reason: str) -> None:
        """A connection was closed by a limit (per-peer cap, header deadline)."""
        self.refused.labels(reason).inc()

    def request_done(self, route: str, bucket: str, status: int, latency_s: float,
                     ttft_s: float | None) -> None:
        """Count one answered request and observe its latency (and TTFT if streamed)."""
        key = (route, bucket, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(route, bucket, str(status))
        counter.inc()
        _cached(self._latency, self.latency, route).observe(latency_s)
        if ttft_s is not None:
            _cached(self._ttft, self.ttft, route).observe(ttft_s)


def _cached(cache: dict[str, Histogram], metric: Histogram, route: str) -> Histogram:
    """``metric.labels(route)``, remembered in ``cache``."""
    child = cache.get(route)
    if child is None:
        child = cache[route] = metric.labels(route)
    return child
