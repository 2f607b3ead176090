"""Wake choices per route (issue 13 item 2, seed 000's two tiers).

What a request does when every upstream of its route is asleep:

* ``hold`` (the default): one magic packet, the request waits for the box;
* ``spill``: the box is woken in the background and the request is answered at once
  by an awake upstream of the route's ``spill`` routes, then of its failover chain
  (editor autocomplete cannot wait for a boot); with nothing awake there it holds;
* ``confirm``: never woken unless the request asks with ``X-Hearth-Wake: 1``; without
  it the request fails over if it can, else gets a 503 ``upstream_asleep`` saying
  how to ask.

A request that sends ``X-Hearth-Wake: 1`` holds for the wake on any route.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

WakeChoice = Literal["hold", "spill", "confirm"]
WAKE_HEADER = "X-Hearth-Wake"


def wake_choice(configured: str, asked: bool) -> str:
    """The choice for one request: the route's, unless the client asked to wake."""
    return "hold" if asked else configured


def wake_asked(headers: Mapping[str, str]) -> bool:
    """Whether a request's headers ask to wake its box (``X-Hearth-Wake: 1``, ``yes`` or
    ``true``); read only when its route's upstreams are asleep."""
    return headers.get(WAKE_HEADER, "").strip().lower() in ("1", "yes", "true")
