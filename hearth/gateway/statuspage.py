"""GET /status: the operator's page (issue 13 item 5), server-rendered, no build step,
no framework, nothing fetched from elsewhere (it works offline).

Read-only for anyone who can reach the gateway: every upstream with its state, load,
keep-warm window, last wake and a latency sparkline; every route with its chain and
drain state; the last routing decisions with their reasons. The buttons (wake,
keep-warm, drain, undrain) appear only after the admin token is typed into the page:
the small script keeps it in a variable (never in storage or a cookie), checks it
against ``GET /admin/upstreams`` and sends it with each admin call. The live part
refreshes itself every few seconds (``GET /status?part=live``).

Who may read it: any peer in the admin networks (loopback and the overlay when the
gateway comes from an inventory); a peer from anywhere else (the LAN, when
``gateway.lan.listen`` opens a LAN listener) gets 401 and nothing of the cluster
unless it sends the admin token (``Authorization: Bearer``). The admin API itself stays
refused off the admin networks, so the page's buttons work on loopback and the overlay only.
"""

from __future__ import annotations

import hmac
import html
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .admin import peer_in
from .errors import error_response
from .upstreams import USABLE

REFRESH_S = 3

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.2em;color:#222}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse}td,th{padding:3px 9px;border-bottom:1px solid #ddd;text-align:left}
.state{font-weight:600}.s-healthy{color:#17803d}.s-degraded,.s-waking,.s-draining{color:#a15c00}
.s-down{color:#b3261e}.s-asleep{color:#5b5fc7}.s-unknown{color:#666}
.muted{color:#777}svg{vertical-align:middle}button{margin-right:4px}
#lock{margin:.6em 0}#lockmsg{margin-left:.6em;color:#b3261e}
"""

_SCRIPT = """
let token = null;  // memory only: gone when the page is closed or reloaded
const live = document.getElementById('live');
function button(label, action, target) {
  const b = document.createElement('button');
  b.textContent = label; b.dataset.action = action; b.dataset.target = target;
  b.onclick = () => act(action, target, b);
  return b;
}
function addButtons() {
  if (!token) return;
  for (const cell of live.querySelectorAll('td.actions[data-upstream]')) {
    const u = cell.dataset.upstream;
    if (cell.dataset.sleeps === 'true') cell.append(button('Wake', 'wake', u));
    cell.append(button('Keep warm', 'keep-warm', u));
  }
  for (const cell of live.querySelectorAll('td.actions[data-route]')) {
    const r = cell.dataset.route;
    cell.append(cell.dataset.drained === 'true' ? button('Undrain', 'undrain', r) : button('Drain', 'drain', r));
  }
}
async function refresh() {
  const r = await fetch('/status?part=live', {cache: 'no-store'});
  if (r.ok) { live.innerHTML = await r.text(); addButtons(); }
}
async function act(action, target, b) {
  b.disabled = true;
  const r = await fetch('/admin/' + action + '/' + encodeURIComponent(target),
                        {method: 'POST', headers: {'Authorization': 'Bearer ' + token}});
  document.getElementById('lockmsg').textContent = r.ok ? '' : action + ' ' + target + ': HTTP ' + r.status;
  await refresh();
}
document.getElementById('unlock').onclick = async () => {
  const t = document.getElementById('token').value;
  const r = await fetch('/admin/upstreams', {headers: {'Authorization': 'Bearer ' + t}});
  if (r.ok) {
    token = t; document.getElementById('token').value = '';
    document.getElementById('lock').hidden = true; document.body.classList.add('admin');
    await refresh();
  } else {
    document.getElementById('lockmsg').textContent = 'token refused (HTTP ' + r.status + ')';
  }
};
setInterval(refresh, REFRESH_MS);
""".replace("REFRESH_MS", str(REFRESH_S * 1000))


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def sparkline(values: Iterable[float], width: int = 120, height: int = 22) -> str:
    """An inline SVG polyline of ``values`` (empty when there are fewer than two)."""
    vals = list(values)
    if len(vals) < 2:
        return '<span class="muted">-</span>'
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    step = width / (len(vals) - 1)
    pts = " ".join(f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in enumerate(vals))
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="latency {lo:.0f}-{hi:.0f} ms">'
            f'<polyline fill="none" stroke="#3366cc" stroke-width="1.5" points="{pts}"/></svg>'
            f' <span class="muted">{vals[-1]:.0f} ms</span>')


def _ago(ts: float | None) -> str:
    if not ts:
        return "-"
    d = time.time() - ts
    return f"{d:.0f}s ago" if d < 120 else f"{d / 60:.0f}m ago" if d < 7200 else f"{d / 3600:.1f}h ago"


def live_html(st: Any) -> str:
    """The part of the page that refreshes: upstreams, routes, recent decisions."""
    cfg = st.cfg
    drained_ups = {u for r in st.drained for u in cfg.routes[r].upstreams}
    served = {u for r in cfg.routes if r not in st.drained for u in cfg.routes[r].upstreams}
    rows = []
    for name, up in st.upstreams.items():
        snap = up.snapshot(name in drained_ups and name not in served)
        wake = st.metrics.wake.snapshot(up) or {}
        last = wake.get("last") or {}
        warm = snap.get("keep_warm_until")
        warm_txt = f"{max(0.0, (float(warm) - time.time()) / 60):.0f} min left" if warm else "-"
        wake_txt = "-" if not last else (f"{_ago(last.get('at'))}, {last.get('seconds', 0):.1f}s"
                                         + ("" if last.get("ok") else " FAILED"))
        if wake.get("consecutive_failures"):
            wake_txt += f" ({wake['consecutive_failures']} failed in a row)"
        state = str(snap["state"])
        rows.append(
            f'<tr data-upstream="{_e(name)}"><td>{_e(name)}</td><td>{_e(up.cfg.model)}</td>'
            f'<td class="state s-{_e(state)}">{_e(state)}</td>'
            f'<td>{snap["in_flight"]}/{snap["cap"]}</td><td>{snap["queued"]}</td>'
            f'<td class="warm">{_e(warm_txt)}</td><td>{_e(wake_txt)}</td>'
            f'<td>{sparkline(st.recent.latency_ms.get(name, ()))}</td>'
            f'<td class="actions" data-upstream="{_e(name)}" data-sleeps="{str(up.sleeps).lower()}"></td></tr>')
    routes = []
    for r, rc in cfg.routes.items():
        ok = any(st.upstreams[u].state in USABLE for u in rc.upstreams if u in st.upstreams)
        routes.append(
            f'<tr data-route="{_e(r)}"><td>{_e(r)}</td><td>{_e(", ".join(rc.upstreams))}</td>'
            f'<td>{_e(" -> ".join(st.policy.chains[r]) or "-")}</td>'
            f'<td>{"terminal" if rc.terminal else ""}</td><td>{_e(rc.wake)}</td>'
            f'<td>{"drained" if r in st.drained else ("usable" if ok else "no usable upstream")}</td>'
            f'<td class="actions" data-route="{_e(r)}" data-drained="{str(r in st.drained).lower()}"></td></tr>')
    decisions = [
        f'<tr><td>{time.strftime("%H:%M:%S", time.localtime(d["at"]))}</td><td>{_e(d["route"])}</td>'
        f'<td>{_e(d["upstream"])}</td><td>{d["status"]}</td><td>{d["latency_ms"]:.0f} ms</td>'
        f'<td>{_e(d["reason"])}</td></tr>' for d in reversed(st.recent.decisions)]
    return (
        "<h2>Upstreams</h2><table><tr><th>upstream</th><th>model</th><th>state</th><th>busy</th><th>queued</th>"
        "<th>keep-warm</th><th>last wake</th><th>latency</th><th></th></tr>" + "".join(rows) + "</table>"
        "<h2>Routes</h2><table><tr><th>route</th><th>upstreams</th><th>falls back to</th><th></th><th>wake</th>"
        "<th>now</th><th></th></tr>" + "".join(routes) + "</table>"
        "<h2>Last routing decisions</h2><table><tr><th>time</th><th>route</th><th>upstream</th><th>status</th>"
        "<th>latency</th><th>why</th></tr>" + ("".join(decisions) or '<tr><td colspan="6" class="muted">none yet'
                                               "</td></tr>") + "</table>"
        f'<p class="muted">as of {time.strftime("%Y-%m-%d %H:%M:%S")}, refreshed every {REFRESH_S}s</p>')


def page_html(st: Any) -> str:
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>hearth gateway status</title>"
            f"<style>{_STYLE}</style></head><body><h1>hearth gateway</h1>"
            '<div id="lock"><input id="token" type="password" placeholder="admin token" autocomplete="off">'
            '<button id="unlock">Unlock actions</button><span id="lockmsg"></span></div>'
            f'<div id="live">{live_html(st)}</div><script>{_SCRIPT}</script></body></html>')


def may_read(st: Any, request: web.Request) -> bool:
    """A peer in the admin networks (or any peer when none are set), or the admin token."""
    nets = st.cfg.admin_networks
    if nets is None:
        return True
    if peer_in(request.remote, tuple(nets)):
        return True
    token = st.policy.admin_token
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return bool(token and given and hmac.compare_digest(given.encode(), token.encode()))


def make_handler(key: Any) -> Any:
    async def status(request: web.Request) -> web.Response:
        """GET /status (``?part=live``: only the part that refreshes)."""
        st = request.app[key]
        if not may_read(st, request):
            resp = error_response(401, "The status page is open on loopback and the overlay; "
                                       "from this network send the admin token (Authorization: Bearer)",
                                  None, "status_needs_token")
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
        body = live_html(st) if request.query.get("part") == "live" else page_html(st)
        return web.Response(text=body, content_type="text/html",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                     "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                     "script-src 'unsafe-inline'; img-src 'self' data:"})
    return status
