"""The gateway bench in ``--quick --skip-litellm`` mode: structure of the JSON, not speed."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hearth.bench.gateway import main
from hearth.bench.gateway_figures import AB_KEYS, DOCUMENTED_KEYS, LITELLM_KEYS, NULLABLE_KEYS

# a ratio is null when its base is not positive (the quick run's few samples on a busy
# machine can put the bare relay's added p99 at or below zero); the key it divides by
RATIO_BASES = {"added_p50_ratio_vs_bare": "bare_added_p50_ms", "added_p99_ratio_vs_bare": "bare_added_p99_ms"}


def test_bench_gateway_quick_writes_every_documented_key(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--skip-litellm", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    missing = [k for k in DOCUMENTED_KEYS if k not in res]
    assert not missing, missing
    for k in DOCUMENTED_KEYS:
        v = res[k]
        if k in LITELLM_KEYS or k in AB_KEYS:
            assert v is None, (k, v)  # skipped (or not asked for), and said so
            continue
        if k in NULLABLE_KEYS and v is None:
            continue
        if k in RATIO_BASES and v is None:  # no ratio to a base the noise made zero or negative
            assert res[RATIO_BASES[k]] <= 0, (k, RATIO_BASES[k], res[RATIO_BASES[k]])
            continue
        assert isinstance(v, int | float) and not isinstance(v, bool), (k, v)
        assert math.isfinite(v), (k, v)
    for k in ("added_p50_ms", "added_p99_ms", "bare_added_p50_ms", "bare_added_p99_ms",
              "litellm_added_p50_ms", "litellm_added_p99_ms", "max_rps_within_p99_bound",
              "litellm_max_rps_within_p99_bound", "ttft_added_p50_ms", "ttft_added_p99_ms",
              "rss_growth_mib_per_min"):
        assert k in DOCUMENTED_KEYS
    assert res["chunks_lost"] == 0 and res["chunks_received_c64"] > 0
    assert res["meta"]["loadavg_start"] and res["meta"]["skip_litellm"] is True
