"""The garbage collector of a serving gateway: its long-lived heap out of the way.

At start the gateway holds ~10^5 long-lived objects (aiohttp, pydantic models, the
policy, prometheus_client); every full (generation-2) collection walks all of them, a
stall of tens of milliseconds (100-200 ms on a loaded 2-core machine) that lands in
the middle of whatever is in flight (issue 17, docs/benchmarks.md). And with the
default generation-0 threshold (700 allocations) the collector also runs every few
requests, each time walking the objects of every request still in flight, and promotes
them to older generations where they are walked again.

:func:`settle` (called once the gateway listens, and after a policy reload) collects
once, then moves everything alive into the permanent generation (:func:`gc.freeze`),
so later collections walk only what was allocated since, and raises the generation-0
threshold to :data:`GEN0_THRESHOLD`. Reference counting still frees almost every
per-request object at once; the collector is only for cycles, which it still finds.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000
"""Allocations (net of frees) between generation-0 collections (CPython's default: 700)."""


def settle() -> None:
    """Collect, freeze the survivors, and set the thresholds (idempotent).

    A reload calls it again: what was frozen is unfrozen first, so a cycle that became
    garbage since (an old policy) is collected rather than kept for good.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, g1, g2)
