"""`hearth status INVENTORY`: the whole cluster on one screen, without waking anything.

Three health tiers (seed 003, issue 13 item 4):

* **core**: the gateway itself (its admin API answers) and every terminal route
  (routes nothing falls back from: one usable or wakeable upstream is enough);
* **inference**: every upstream as the gateway sees it (asleep / waking / up /
  degraded / down / draining), loaded models (Ollama ``/api/ps``, vLLM
  ``/v1/models``; asked of awake upstreams only), in-flight and queued requests,
  keep-warm windows, the last wake and its duration;
* **infrastructure**: every host: its SSH port answering a TCP connect (hosts the
  gateway reports asleep are not touched: a connect never sends a magic packet, but
  nothing here should even look like traffic to a sleeping box), its k3s role and its
  k3s node state (Ready / NotReady / missing) as the first k3s server reports it
  (one read-only ``k3s kubectl get nodes`` over SSH: hearth/status_k3s.py).

The gateway's view comes from ``GET /admin/upstreams`` with the inventory's admin
token. ``--json`` prints the same as one JSON document. Exit codes: 0 when every core
service is up, 1 when one is down, 2 for a bad inventory or token.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hearth import status_k3s
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import Inventory, SecretError, resolve_secret
from hearth.status_heal import collect as collect_healing
from hearth.status_heal import render as render_healing

USABLE = {"healthy", "degraded", "unknown", "draining"}
WAKEABLE = {"asleep", "waking"}
TIMEOUT_S = 2.0


def _get_json(url: str, token: str | None = None, timeout: float = TIMEOUT_S) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def tcp_open(address: str, port: int, timeout: float = 1.5) -> bool:
    """A TCP connect to ``address:port`` succeeds within ``timeout``."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def gateway_url(inv: Inventory) -> str:
    """The gateway's admin API on its overlay address (or LAN address without an overlay)."""
    assert inv.gateway is not None
    host = inv.hosts[inv.gateway.host]
    return f"http://{host.overlay_ip or host.address}:{inv.gateway.port}"


def _state(row: dict[str, Any]) -> str:
    s = str(row.get("state"))
    return "up" if s == "healthy" else s


def loaded_models(row: dict[str, Any], get: Callable[[str], Any]) -> list[str] | None:
    """Models the engine has loaded now (None when not asked or not answering)."""
    if row.get("state") in WAKEABLE or row.get("state") == "down":
        return None
    base = str(row.get("base_url", "")).rstrip("/")
    try:
        if row.get("engine") == "ollama":
            return [str(m.get("name") or m.get("model")) for m in get(base + "/api/ps").get("models") or []]
        return [str(m.get("id")) for m in get(base + "/v1/models").get("data") or []]
    except (OSError, ValueError, AttributeError):
        return None


def collect(inv: Inventory, url: str, token: str, *, probe: bool = True,
            get: Callable[..., Any] = _get_json, tcp: Callable[[str, int], bool] = tcp_open,
            k3s: Callable[..., dict[str, Any]] = status_k3s.read_nodes) -> dict[str, Any]:
    """The status report (what ``--json`` prints)."""
    t0 = time.monotonic()
    gateway: dict[str, Any] = {"name": "gateway", "url": url, "state": "up", "error": None}
    answer: dict[str, Any] = {}
    try:
        answer = get(url + "/admin/upstreams", token)
        rows = answer["upstreams"]
        rows = list(rows.values()) if isinstance(rows, dict) else list(rows)
    except urllib.error.HTTPError as exc:
        gateway.update(state="down", error=f"admin API: HTTP {exc.code}")
        rows = []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        gateway.update(state="down", error=f"admin API: {type(exc).__name__}: {exc}")
        rows = []
    by_name = {str(r["name"]): r for r in rows}

    # Terminal routes as the running gateway has them; from the inventory when it cannot say.
    terminal = {r: list(v["upstreams"]) for r, v in (answer.get("routes") or {}).items() if v.get("terminal")}
    if not answer.get("routes") and inv.routing is not None:
        fake = itertools.count()  # the routes only: secrets stay unread (distinct values pass the key checks)
        cfg = gateway_config_from_inventory(inv, resolve=lambda _ref: f"unread-{next(fake)}")
        terminal = {r: list(rc.upstreams) for r, rc in cfg.routes.items() if rc.terminal}
    routes = []
    for name, ups in terminal.items():
        states = [_state(by_name[u]) if u in by_name else "unknown" for u in ups]
        usable = any(s == "up" or s in USABLE for s in states)
        state = "up" if usable else "asleep" if any(s in WAKEABLE for s in states) else "down"
        if gateway["state"] != "up":
            state = "unknown"
        routes.append({"name": f"route {name} (terminal)", "state": state, "upstreams": ups})

    with ThreadPoolExecutor(max_workers=8) as pool:
        loaded = list(pool.map(lambda r: loaded_models(r, get) if probe else None, rows))
    inference = []
    for row, models in zip(rows, loaded, strict=True):
        wake = row.get("wake") or {}
        last = wake.get("last") or {}
        inference.append({
            "name": row["name"], "host": row.get("host"), "model": row.get("model"), "state": _state(row),
            "in_flight": row.get("in_flight"), "cap": row.get("cap"), "queued": row.get("queued"),
            "loaded": models, "keep_warm_until": row.get("keep_warm_until"),
            "last_wake_at": last.get("at"), "last_wake_s": last.get("seconds"), "last_wake_ok": last.get("ok"),
            "wake_failures_in_row": wake.get("consecutive_failures"), "last_error": row.get("last_error"),
            "engine": row.get("engine"), "gpu": row.get("gpu"), "holds_gpu": row.get("holds_gpu"),
            "shares_gpu_with": row.get("shares_gpu_with") or [],
        })

    asleep_hosts = {str(r.get("host")) for r in rows if r.get("state") in WAKEABLE}
    names = list(inv.hosts)
    nodes: dict[str, Any] = {"server": None, "state": "not asked", "error": None, "nodes": {}, "unknown_nodes": {}}
    if probe and inv.k3s is not None:
        nodes = k3s(inv, server_asleep=inv.k3s.server in asleep_hosts)

    def host_row(name: str) -> dict[str, Any]:
        h = inv.hosts[name]
        k3s = ("server" if "k3s_server" in h.roles else "agent" if "k3s_agent" in h.roles else None)
        if name in asleep_hosts:
            state = "asleep"
        elif not probe:
            state = "unknown"
        else:
            state = "up" if tcp(str(h.address), h.ssh_port or inv.ssh.port) else (
                "asleep?" if h.sleep.sleeps else "down")
        return {"name": name, "address": str(h.address), "state": state, "sleeps": h.sleep.sleeps, "k3s": k3s,
                "k3s_node": nodes["nodes"].get(name)}

    with ThreadPoolExecutor(max_workers=8) as pool:
        infrastructure = list(pool.map(host_row, names))
    core = [gateway, *routes]
    return {
        "inventory": inv.name,
        "ok": all(c["state"] in ("up", "asleep") for c in core),
        "tiers": {"core": core, "inference": inference, "infrastructure": infrastructure},
        "k3s": nodes,
        "gpus": answer.get("gpus") or {},  # cards and who shares them, as the gateway has them
        "healing": collect_healing(inv, get) if probe else None,  # issue 23: the healing timer's actions
        "took_s": round(time.monotonic() - t0, 3),
    }


def _ago(ts: float | None) -> str:
    if not ts:
        return "-"
    d = time.time() - ts
    return f"{d:.0f}s ago" if d < 120 else f"{d / 60:.0f}m ago" if d < 7200 else f"{d / 3600:.1f}h ago"


def gpu_lines(report: dict[str, Any]) -> list[str]:
    """Cards that several upstreams share: who is on each, what holds it now, what runs."""
    ups = {u["name"]: u for u in report["tiers"]["inference"]}
    shared = {c: g for c, g in (report.get("gpus") or {}).items() if len(g.get("upstreams") or []) > 1}
    if not shared:
        return []
    out = ["", "shared cards (plan: what can be resident at once)"]
    for card, g in shared.items():
        who = []
        for name in g["upstreams"]:
            row = ups.get(name) or {}
            held = {True: "holds it", False: "asleep" if row.get("state") == "asleep" else "not loaded"
                    }.get(row.get("holds_gpu"), "not known")
            who.append(f"{name} ({row.get('engine') or '?'}, {held})")
        out.append(f"  {card:<22} {g.get('model', '')} {g.get('usable_gb', 0):g} GiB usable, plan "
                   f"{g.get('planned_gb') or 0:g}: {'; '.join(who)}; {g.get('in_flight', 0)} running, "
                   f"{g.get('queued', 0)} queued")
    return out


def render(report: dict[str, Any]) -> str:
    """The one-screen text form."""
    t = report["tiers"]
    out = [f"hearth status: {report['inventory']}  "
           f"({'core services up' if report['ok'] else 'A CORE SERVICE IS DOWN'})", "", "core"]
    for c in t["core"]:
        extra = c.get("error") or (", ".join(c["upstreams"]) if c.get("upstreams") else c.get("url", ""))
        out.append(f"  {c['name']:<28} {c['state']:<9} {extra}")
    out += ["", "inference"]
    out.append(f"  {'upstream':<22} {'state':<9} {'busy':<7} {'queued':<6} {'loaded':<24} {'keep-warm':<10} last wake")
    for u in t["inference"]:
        busy = f"{u['in_flight']}/{u['cap']}"
        loaded = "-" if u["loaded"] is None else (", ".join(u["loaded"]) or "none")
        warm = "-" if not u["keep_warm_until"] else f"{max(0, (u['keep_warm_until'] - time.time()) / 60):.0f} min"
        wake = "-" if u["last_wake_at"] is None else (
            f"{_ago(u['last_wake_at'])}, {u['last_wake_s']:.1f}s" + ("" if u["last_wake_ok"] else " FAILED"))
        if u.get("wake_failures_in_row"):
            wake += f" ({u['wake_failures_in_row']} failed in a row)"
        out.append(f"  {u['name']:<22} {u['state']:<9} {busy:<7} {u['queued']!s:<6} {loaded[:24]:<24} "
                   f"{warm:<10} {wake}")
    out += gpu_lines(report)
    out += ["", "infrastructure"]
    for h in t["infrastructure"]:
        k3s = f"k3s {h['k3s']} {h.get('k3s_node') or ''}".rstrip() if h["k3s"] else ""
        out.append(f"  {h['name']:<22} {h['state']:<9} {h['address']:<16} {k3s}")
    nodes = report.get("k3s") or {}
    if nodes.get("error"):
        out.append(f"  k3s nodes: {nodes['error']}")
    for node, state in (nodes.get("unknown_nodes") or {}).items():
        out.append(f"  k3s node {node} ({state}): not in the inventory")
    out += render_healing(report.get("healing"))
    return "\n".join(out)


def cmd_status(args: argparse.Namespace) -> int:
    from hearth.commands import load_or_report

    inv = load_or_report(args.inventory)
    if inv is None:
        return 2
    if inv.gateway is None:
        print(f"hearth status: {args.inventory} has no gateway")
        return 2
    try:
        token = resolve_secret(inv.gateway.admin_token)
    except SecretError as exc:
        print(f"hearth status: gateway.admin_token: {exc}")
        return 2
    report = collect(inv, (args.gateway or gateway_url(inv)).rstrip("/"), token, probe=not args.no_probe)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0 if report["ok"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="the cluster on one screen (gateway's view + cheap probes; wakes nothing)")
    p.add_argument("inventory", help="inventory file (inventory/<lab>.yml or .py)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--gateway", help="the gateway's base URL (default: its overlay address and port)")
    p.add_argument("--no-probe", action="store_true", help="only the gateway's view: no SSH or engine probes")
    p.set_defaults(func=cmd_status)
