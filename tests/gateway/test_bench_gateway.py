"""The gateway bench in ``--quick --skip-litellm`` mode: structure of the JSON, not speed."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hearth.bench.gateway import AB_KEYS, DOCUMENTED_KEYS, LITELLM_KEYS, NULLABLE_KEYS, main


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
        assert isinstance(v, int | float) and not isinstance(v, bool), (k, v)
        assert math.isfinite(v), (k, v)
    for k in ("added_p50_ms", "added_p99_ms", "bare_added_p50_ms", "bare_added_p99_ms",
              "litellm_added_p50_ms", "litellm_added_p99_ms", "max_rps_within_p99_bound",
              "litellm_max_rps_within_p99_bound", "ttft_added_p50_ms", "ttft_added_p99_ms",
              "rss_growth_mib_per_min"):
        assert k in DOCUMENTED_KEYS
    assert res["chunks_lost"] == 0 and res["chunks_received_c64"] > 0
    assert res["meta"]["loadavg_start"] and res["meta"]["skip_litellm"] is True
