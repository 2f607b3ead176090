"""STAND-IN for vLLM's Prometheus ``/metrics`` (hearth lab). Not vLLM's code.

The names, types, help texts, labels (``engine``, ``model_name``; ``finished_reason``
on request_success) and the e2e latency buckets are those vLLM 0.11.0 registers in
``vllm/v1/metrics/loggers.py`` (``PrometheusStatLogger``), read from the release
wheel ``vllm-0.11.0-cp38-abi3-manylinux1_x86_64.whl`` (sha256 3861c75f...cd62,
the wheel hearth/vllm_flags was generated from). As in 0.11.0,
``vllm:gpu_cache_usage_perc`` and ``vllm:gpu_prefix_cache_{queries,hits}``
(deprecated in 0.9.2) are hidden unless ``--show-hidden-metrics-for-version 0.10``.

Served: the scheduler gauges (running / waiting), the KV-cache usage gauge, the
prefix-cache, preemption, token and request counters, and the e2e latency
histogram; not served: the other histograms, ``vllm:cache_config_info``, spec
decoding, LoRA and the HTTP instrumentator's ``http_*`` series. The values are the
stand-in's own: a request is "running" while its answer is written (the stand-in
has no scheduler, so nothing ever waits or is preempted), its KV cache holds the
request's words as tokens in a pool of ``kv_tokens`` (the planner's arithmetic),
and a prefix-cache hit is a prompt seen before.
"""

from __future__ import annotations

import threading
import time
from typing import Any

E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
               40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
FINISH_REASONS = ("stop", "length", "abort")
HELP = {
    "vllm:num_requests_running": "Number of requests in model execution batches.",
    "vllm:num_requests_waiting": "Number of requests waiting to be processed.",
    "vllm:gpu_cache_usage_perc": "GPU KV-cache usage. 1 means 100 percent usage."
                                 "DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
    "vllm:gpu_prefix_cache_queries": "GPU prefix cache queries, in terms of number of queried"
                                     "tokens. DEPRECATED: Use vllm:prefix_cache_queries instead.",
    "vllm:gpu_prefix_cache_hits": "GPU prefix cache hits, in terms of number of cached "
                                  "tokens. DEPRECATED: Use vllm:prefix_cache_hits instead.",
    "vllm:kv_cache_usage_perc": "KV-cache usage. 1 means 100 percent usage.",
    "vllm:prefix_cache_queries": "Prefix cache queries, in terms of number of queried tokens.",
    "vllm:prefix_cache_hits": "Prefix cache hits, in terms of number of cached tokens.",
    "vllm:num_preemptions": "Cumulative number of preemption from the engine.",
    "vllm:prompt_tokens": "Number of prefill tokens processed.",
    "vllm:generation_tokens": "Number of generation tokens processed.",
    "vllm:request_success": "Count of successfully processed requests.",
    "vllm:e2e_request_latency_seconds": "Histogram of e2e request latency in seconds.",
}
HIDDEN = ("vllm:gpu_cache_usage_perc", "vllm:gpu_prefix_cache_queries", "vllm:gpu_prefix_cache_hits")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Stats:
    """One served model's counters, safe across the server's request threads."""

    def __init__(self, served: str, kv_tokens: int, prefix_caching: bool, show_hidden: bool) -> None:
        self.labels = f'engine="0",model_name="{served}"'
        self.kv_tokens = max(kv_tokens, 1)
        self.prefix_caching = prefix_caching
        self.show_hidden = show_hidden
        self.created = time.time()
        self.lock = threading.Lock()
        self.running = 0
        self.in_cache = 0
        self.counters = {"vllm:prefix_cache_queries": 0, "vllm:prefix_cache_hits": 0,
                         "vllm:num_preemptions": 0, "vllm:prompt_tokens": 0, "vllm:generation_tokens": 0}
        self.success = dict.fromkeys(FINISH_REASONS, 0)
        self.buckets = [0] * len(E2E_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.prompts: set[str] = set()

    def start(self, prompt_key: str, prompt_tokens: int, tokens: int) -> None:
        with self.lock:
            self.running += 1
            self.in_cache += tokens
            if self.prefix_caching:
                self.counters["vllm:prefix_cache_queries"] += prompt_tokens
                if prompt_key in self.prompts:
                    self.counters["vllm:prefix_cache_hits"] += prompt_tokens
                self.prompts.add(prompt_key)

    def finish(self, prompt_tokens: int, generated: int, tokens: int, seconds: float, reason: str) -> None:
        with self.lock:
            self.running -= 1
            self.in_cache -= tokens
            self.counters["vllm:prompt_tokens"] += prompt_tokens
            self.counters["vllm:generation_tokens"] += generated
            self.success[reason] += 1
            self.latency_sum += seconds
            self.latency_count += 1
            for i, bound in enumerate(E2E_BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1

    def _family(self, out: list[str], name: str, kind: str, samples: list[tuple[str, str, float]]) -> None:
        if name in HIDDEN and not self.show_hidden:
            return
        out += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} {kind}"]
        out += [f"{name}{suffix}{{{labels}}} {float(value)!r}" for suffix, labels, value in samples]

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of every served family."""
        with self.lock:
            usage = min(1.0, self.in_cache / self.kv_tokens)
            out: list[str] = []
            for name, value in (("vllm:num_requests_running", self.running), ("vllm:num_requests_waiting", 0),
                                ("vllm:gpu_cache_usage_perc", usage), ("vllm:kv_cache_usage_perc", usage)):
                self._family(out, name, "gauge", [("", self.labels, value)])
            hidden = {"vllm:gpu_prefix_cache_queries": self.counters["vllm:prefix_cache_queries"],
                      "vllm:gpu_prefix_cache_hits": self.counters["vllm:prefix_cache_hits"]}
            for name, value in [*hidden.items(), *self.counters.items()]:
                self._family(out, name, "counter", [("_total", self.labels, value),
                                                    ("_created", self.labels, self.created)])
            self._family(out, "vllm:request_success", "counter", [
                (suffix, f'{self.labels},finished_reason="{reason}"', value)
                for reason, count in self.success.items()
                for suffix, value in (("_total", count), ("_created", self.created))])  # fmt: skip
            latency: list[tuple[str, str, Any]] = [
                ("_bucket", f'{self.labels},le="{bound!r}"', count)
                for bound, count in zip(E2E_BUCKETS, self.buckets, strict=True)]  # fmt: skip
            latency += [("_bucket", f'{self.labels},le="+Inf"', self.latency_count),
                        ("_count", self.labels, self.latency_count), ("_sum", self.labels, self.latency_sum),
                        ("_created", self.labels, self.created)]  # fmt: skip
            self._family(out, "vllm:e2e_request_latency_seconds", "histogram", latency)
        return "\n".join(out) + "\n"
