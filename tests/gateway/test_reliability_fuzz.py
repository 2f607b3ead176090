"""Fuzzed JSON bodies against a real gateway: never a 5xx, never a leaked slot."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_reliability_helpers import ThreadedRig

ALLOWED = {200, 400, 403, 404, 413, 422}
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(
    max_size=20)
JSON_ANY = st.recursive(JSON_LEAF, lambda c: st.lists(c, max_size=4)
                        | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)
KEYS = st.sampled_from(["model", "messages", "stream", "prompt", "input", "metadata",
                        "max_tokens", "temperature", "tools", "n", "user"])
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", 1]),
                                 "content": JSON_ANY})
BODY = st.one_of(
    JSON_ANY,
    st.dictionaries(KEYS, JSON_ANY, max_size=6),
    st.fixed_dictionaries({"model": st.sampled_from(["bench-model", "hearth/chat",
                                                     "hearth/auto", "", "x/y"]) | JSON_LEAF,
                           "messages": st.lists(MESSAGE, max_size=3) | JSON_ANY},
                          optional={"stream": st.booleans() | JSON_LEAF,
                                    "metadata": st.dictionaries(
                                        st.sampled_from(["hearth_route", "x"]), JSON_ANY)}),
)


def test_fuzzed_json_bodies(tmp_path: Path) -> None:
    seen: Counter[int] = Counter()
    tr = ThreadedRig(tmp_path)
    with tr as r, httpx.Client(base_url=r.base, timeout=10) as client:

        @settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(body=BODY, path=st.sampled_from(["/v1/chat/completions", "/v1/completions",
                                                "/v1/embeddings"]))
        def one(body: Any, path: str) -> None:
            resp = client.post(path, content=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"})
            seen[resp.status_code] += 1
            assert resp.status_code in ALLOWED, (body, resp.status_code, resp.text[:300])

        one()
        print(f"[reliability] fuzzed JSON: sent={sum(seen.values())} "
              + " ".join(f"{k}={v}" for k, v in sorted(seen.items())))
        tr.run(r.assert_no_leak())
        assert seen[200] >= 1 and sum(seen.values()) >= 100
