"""The gateway's admin API, called from the gateway host the way an operator would.

Every lab check that opens or ends a keep-warm window, reads ``/admin/upstreams`` or
asks for a recovery goes through ``admin``: curl on the gateway host over loopback,
with the admin token read there from its 0600 file by root (the token never crosses
the test's command line or output). The port comes from the inventory under test.
"""

from __future__ import annotations

import json
from typing import Any

from hearth.gateway.from_inventory import admin_token_path


def admin(gateway: Any, inv: Any, path: str, method: str = "GET", timeout_s: int = 10) -> dict[str, Any]:
    """``METHOD path`` on the gateway's admin API; its JSON answer.

    Example: ``admin(gateway, inv, "/admin/keep-warm/lab-ollama?minutes=10", "POST", 150)``.
    """
    out = gateway.check_output(
        f"sudo sh -c 'curl -sS -m {timeout_s} -X {method} "
        f"-H \"Authorization: Bearer $(cat {admin_token_path()})\" "
        f"\"http://127.0.0.1:{inv.gateway.port}{path}\"'"
    )
    return dict(json.loads(out))


def upstream_state(gateway: Any, inv: Any, name: str) -> str:
    """The state ``/admin/upstreams`` shows for the upstream ``name`` (up, asleep, down...)."""
    upstreams = admin(gateway, inv, "/admin/upstreams")["upstreams"]
    row = upstreams[name] if isinstance(upstreams, dict) else next(u for u in upstreams if u["name"] == name)
    return str(row["state"])


def keep_warm(gateway: Any, inv: Any, upstream: str, minutes: float | None) -> dict[str, Any]:
    """Open a keep-warm window of ``minutes`` on ``upstream``, or end it (``None``).

    Opening one may wake the host and load the model, hence the long timeout.
    """
    if minutes is None:
        return admin(gateway, inv, f"/admin/keep-warm/{upstream}", "DELETE", 60)
    return admin(gateway, inv, f"/admin/keep-warm/{upstream}?minutes={minutes:g}", "POST", 150)
