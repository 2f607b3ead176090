"""The figures of `hearth bench gateway`: every key its JSON holds, the targets they are
read against, and the report printed from them (docs/benchmarks.md says what each means).
"""

from __future__ import annotations

from typing import Any

# Every figure key written to the JSON (flat, numeric, milliseconds unless named).
# Keys in LITELLM_KEYS are null when LiteLLM is skipped.
CONCURRENCIES = (1, 16, 64)
LOOSE_P99_BOUND_MS = 100.0  # second, looser bound: a ratio even when LiteLLM never meets +10 ms
PROXIES = ("bare", "bare_httpx", "hearth", "hearth_asyncio", "litellm")
_PREFIX = {"hearth": "", "bare": "bare_", "bare_httpx": "bare_httpx_", "litellm": "litellm_",
           "hearth_asyncio": "hearth_asyncio_",
           "direct": "direct_"}


def _documented() -> tuple[list[str], set[str], set[str]]:
    keys = ["direct_p50_ms", "direct_p99_ms", "p99_bound_ms", "loadavg_1m_start",
            "loadavg_1m_end", "mock_latency_ms", "mock_chunks", "mock_chunk_interval_ms",
            "added_p50_ratio_vs_bare", "added_p99_ratio_vs_bare", "loose_p99_bound_ms",
            "max_rps_100ms_ratio_vs_litellm",
            "bare_httpx_added_p50_ratio_vs_bare", "max_rps_ratio_vs_litellm",
            "added_p50_ratio_vs_litellm", "direct_max_rps_within_p99_bound",
            "loadgen_limited", "rss_start_mib", "rss_warm_mib", "rss_end_mib",
            "rss_growth_mib_per_min", "soak_s", "soak_requests", "soak_cpu_s_per_1000_req",
            "chunks_expected_per_stream", "max_rps_ratio_vs_bare",
            "ttft_allowance_ms_c16", "ttft_allowance_ms_c64"]
    lite: set[str] = {"max_rps_ratio_vs_litellm", "added_p50_ratio_vs_litellm",
                      "max_rps_100ms_ratio_vs_litellm"}
    ab: set[str] = set()
    for p in PROXIES:
        x = _PREFIX[p]
        per = [f"{x}p50_ms", f"{x}p99_ms", f"{x}added_p50_ms", f"{x}added_p99_ms",
               f"{x}max_rps_within_p99_bound", f"{x}max_rps_within_p99_100ms",
               f"{x}cpu_s_per_1000_req",
               f"{x}ttft_added_p50_ms", f"{x}ttft_added_p99_ms", f"{x}chunks_lost",
               f"{x}disconnect_stream_ms", f"{x}disconnect_nonstream_ms"]
        for c in CONCURRENCIES:
            per += [f"{x}ttft_added_p50_ms_c{c}", f"{x}ttft_added_p99_ms_c{c}",
                    f"{x}cpu_ms_per_stream_c{c}",
                    f"{x}gap_added_p50_ms_c{c}", f"{x}gap_added_p99_ms_c{c}",
                    f"{x}chunks_received_c{c}"]
        keys += per
        if p == "litellm":
            lite.update(per)
        if p == "hearth_asyncio":
            ab.update(per)
    keys += ["direct_disconnect_stream_ms", "direct_disconnect_nonstream_ms"]
    return keys, lite, ab


# AB_KEYS: a second hearth on asyncio's own event loop (``--ab-event-loop``), else null
DOCUMENTED_KEYS, LITELLM_KEYS, AB_KEYS = _documented()
# null when undefined: the bare relay passed no throughput step (a ratio to 0)
NULLABLE_KEYS = {"max_rps_ratio_vs_bare"}

TARGETS: list[tuple[str, str, float | str, str]] = [
    # (key, op, threshold (a number, or the key of another figure), description)
    ("added_p50_ratio_vs_bare", "<=", 1.3, "added latency (c=1) within 1.3x the bare relay's"),
    ("added_p99_ratio_vs_bare", "<=", 1.3, "added p99 (c=1) within 1.3x the bare relay's"),
    ("max_rps_ratio_vs_bare", ">=", 0.8, "throughput at the p99 bound >= 80% of the relay's"),
    ("loadgen_limited", "<=", 0, "the load generator was not the limit"),
    ("ttft_added_p50_ms_c16", "<=", "ttft_allowance_ms_c16",
     "TTFT added p50 c=16 <= 1.5x relay's + 0.5 ms"),
    ("ttft_added_p50_ms_c64", "<=", "ttft_allowance_ms_c64",
     "TTFT added p50 c=64 <= 1.5x relay's + 0.5 ms"),
    ("added_p50_ms", "<=", 0.5, "added p50 at c=1 <= 0.5 ms"),
    ("added_p99_ms", "<=", 1.5, "added p99 at c=1 <= 1.5 ms"),
    ("max_rps_ratio_vs_litellm", ">=", 10.0, "throughput at the p99 bound >= 10x LiteLLM"),
    ("max_rps_100ms_ratio_vs_litellm", ">=", 10.0, "same, at a p99 <= 100 ms bound"),
    ("ttft_added_p50_ms", "<=", 1.0, "streaming TTFT added (c=1) <= 1 ms"),
    ("rss_growth_mib_per_min", "<=", 1.0, "RSS growth after warm-up ~0 (<= 1 MiB/min)"),
    ("chunks_lost", "<=", 0.0, "no streamed chunk lost"),
]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def report(res: dict[str, Any]) -> str:
    """Human tables: per-path figures, streaming, disconnects, resources, targets."""
    paths = [p for p in PROXIES
             if res.get(f"{_PREFIX[p]}added_p50_ms") is not None]
    lines = [f"load average at start: {res['meta'].get('loadavg_start')}   "
             f"at end: {res['meta'].get('loadavg_end')}   (2-core machine; shared)", ""]
    width = {p: max(12, len(p) + 2) for p in paths}
    head = f"{'figure':34}" + "".join(f"{p:>{width[p]}}" for p in paths)
    lines += ["Latency at concurrency 1 (ms; added = path - direct; direct p50 "
              f"{_fmt(res['direct_p50_ms'])} p99 {_fmt(res['direct_p99_ms'])})", head]

    def row(label: str, suffix: str) -> None:
        lines.append(f"{label:34}" + "".join(
            f"{_fmt(res.get(_PREFIX[p] + suffix)):>{width[p]}}" for p in paths))

    row("p50 (ms)", "p50_ms")
    row("p99 (ms)", "p99_ms")
    row("added p50 (ms)", "added_p50_ms")
    row("added p99 (ms)", "added_p99_ms")
    row("CPU s / 1000 req (c=1)", "cpu_s_per_1000_req")
    row(f"max rps, p99 <= {_fmt(res['p99_bound_ms'])} ms", "max_rps_within_p99_bound")
    row("max rps, p99 <= 100 ms", "max_rps_within_p99_100ms")
    lines += ["", "Streaming (ms added vs direct; chunks counted)", head]
    for c in CONCURRENCIES:
        row(f"TTFT added p50, c={c}", f"ttft_added_p50_ms_c{c}")
        row(f"TTFT added p99, c={c}", f"ttft_added_p99_ms_c{c}")
        row(f"gap added p50, c={c}", f"gap_added_p50_ms_c{c}")
        row(f"gap added p99, c={c}", f"gap_added_p99_ms_c{c}")
        row(f"chunks received, c={c}", f"chunks_received_c{c}")
        row(f"CPU ms / stream, c={c}", f"cpu_ms_per_stream_c{c}")
    row("chunks lost (all c)", "chunks_lost")
    lines += ["", "Client disconnect -> upstream sees the close (ms, p50; 5000 = never)",
              head]
    row("non-streaming", "disconnect_nonstream_ms")
    row("streaming", "disconnect_stream_ms")
    lines.append(f"{'(direct: non-stream / stream)':34}"
                 f"{_fmt(res['direct_disconnect_nonstream_ms']):>12}"
                 f"{_fmt(res['direct_disconnect_stream_ms']):>12}")
    lines += ["", "hearth resources",
              f"  RSS at start {_fmt(res['rss_start_mib'])} MiB, after warm-up "
              f"{_fmt(res['rss_warm_mib'])} MiB, after a {_fmt(res['soak_s'])} s soak "
              f"({res['soak_requests']} req) {_fmt(res['rss_end_mib'])} MiB; growth "
              f"{_fmt(res['rss_growth_mib_per_min'])} MiB/min; soak CPU "
              f"{_fmt(res['soak_cpu_s_per_1000_req'])} s/1000 req",
              f"  direct path max rps within bound (load generator ceiling): "
              f"{_fmt(res['direct_max_rps_within_p99_bound'])}"
              f"{'  [hearth limited by the load generator: a lower bound]' if res['loadgen_limited'] else ''}",
              "", "Ratios (same run)",
              f"  added_p50_ratio_vs_bare {_fmt(res['added_p50_ratio_vs_bare'])}   "
              f"added_p99_ratio_vs_bare {_fmt(res['added_p99_ratio_vs_bare'])}   "
              f"bare_httpx_added_p50_ratio_vs_bare {_fmt(res['bare_httpx_added_p50_ratio_vs_bare'])}",
              f"  max_rps_ratio_vs_litellm {_fmt(res['max_rps_ratio_vs_litellm'])}   "
              f"max_rps_100ms_ratio_vs_litellm {_fmt(res['max_rps_100ms_ratio_vs_litellm'])}   "
              f"added_p50_ratio_vs_litellm {_fmt(res['added_p50_ratio_vs_litellm'])}",
              "", "Targets (informational: the bench never fails on them)"]
    for key, op, thr, desc in TARGETS:
        v = res.get(key)
        t = res.get(thr) if isinstance(thr, str) else thr
        ok = v is not None and t is not None and (v <= t if op == "<=" else v >= t)
        verdict = "n/a " if v is None or t is None else ("PASS" if ok else "FAIL")
        shown = f"{thr} = {_fmt(t)}" if isinstance(thr, str) else f"{thr:g}"
        lines.append(f"  [{verdict}] {desc:52} {key} = {_fmt(v)} ({op} {shown})")
    return "\n".join(lines)
