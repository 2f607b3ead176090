"""Forwarding with capacity, spill, queue, failover, wake and streaming relay."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from . import cloud, ollama, spend
from .config import RouteCfg, Timeouts
from .errors import error_body, error_response, sse_error_event
from .routing import Decision
from .state import GatewayState
from .upstreams import ASLEEP, WAKING, Upstream
from .wakechoice import WAKE_HEADER, wake_asked, wake_choice

_PASS_HEADERS = (hdrs.CONTENT_TYPE, hdrs.CACHE_CONTROL)
_CLIENT_ERRORS = (aiohttp.ClientError, OSError, asyncio.IncompleteReadError)
_JSON_HEADERS = {"Content-Type": "application/json"}


class Deadline:
    """``asyncio.timeout(delay)`` for the hot path, as a plain (sync) context manager.

    The same semantics (the task is cancelled at the deadline and the cancellation
    surfaces as :class:`TimeoutError`; a cancellation from elsewhere propagates), at
    about half the cost per request: one timer handle and no state machine.
    """

    __slots__ = ("_cancelling", "_delay", "_fired", "_handle", "_task")

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._fired = False

    def __enter__(self) -> Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task, self._cancelling = task, task.cancelling()
        # call_later, not call_at(loop.time() + delay): uvloop's call_at reads the clock
        # again to turn the time back into a delay
        self._handle = loop.call_later(self._delay, self._fire)
        return self

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self._handle.cancel()
        if (self._fired and exc_type is asyncio.CancelledError
                and self._task.uncancel() <= self._cancelling):
            raise TimeoutError from exc


class StreamDeadline(Deadline):
    """The deadline of a relayed stream: the exchange must end by ``at`` (loop time) and
    at most ``idle`` seconds may pass between :meth:`touch` calls (one per chunk).

    One timer for the whole stream, re-armed only when it fires early: a chunk costs one
    ``loop.time()``, not the cancel + re-arm of a per-read timer (aiohttp's ``sock_read``
    does that on every chunk). Expiry surfaces as :class:`TimeoutError`, as for
    :class:`Deadline`.
    """

    __slots__ = ("_at", "_idle", "_last", "_loop")

    def __init__(self, at: float, idle: float | None) -> None:
        super().__init__(0.0)
        self._at, self._idle = at, idle

    def __enter__(self) -> StreamDeadline:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("StreamDeadline must be used inside a task")
        self._task, self._cancelling = task, task.cancelling()
        self._last = self._loop.time()
        self._handle = self._loop.call_at(self._due(), self._check)
        return self

    def _due(self) -> float:
        return self._at if self._idle is None else min(self._at, self._last + self._idle)

    def touch(self) -> None:
        """Data arrived (or was passed on): the idle clock starts again."""
        self._last = self._loop.time()

    def _check(self) -> None:
        due = self._due()
        if self._loop.time() < due:  # touched since the timer was set: not yet
            self._handle = self._loop.call_at(due, self._check)
        else:
            self._fire()


class FirstChunkResponse(web.StreamResponse):
    """A stream response whose head goes out with its first chunk, in one write.

    aiohttp's ``StreamResponse`` sends its head on ``prepare()``, a write (and TCP
    segment) of its own; ``web.Response`` buffers it until the body. A relayed stream is
    prepared only once its first chunk is in hand and that chunk is written at once, so
    buffering delays nothing and saves one write per stream. (aiohttp's own switch,
    ``_send_headers_immediately``; an empty first write still sends the head.)
    """

    _send_headers_immediately = False


def _where(route: str) -> str:
    """A route as messages name it (``''``: a pin to an upstream on no route)."""
    return f"route '{route}'" if route else "the pinned model (on no route)"


@functools.lru_cache(maxsize=64)
def _client_timeout(connect_s: float, idle_s: float | None) -> aiohttp.ClientTimeout:
    """The per-request aiohttp timeout (immutable, so one per distinct setting)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=idle_s)


@functools.lru_cache(maxsize=256)
def _upstream_url(base_url: str, path: str) -> URL:
    """The parsed URL of ``path`` on an upstream (parsed once, not per request)."""
    return URL(base_url + path)


def _utf8_object(raw: bytes) -> bool:
    """Whether a body that parsed as a JSON object is UTF-8 starting with ``{``.

    ``json.loads`` also accepts UTF-16/32 and a UTF-8 BOM; those are re-encoded
    rather than forwarded as they came.
    """
    return raw[:1] == b"{" and raw[1:2] != b"\x00"


def upstream_body(payload: dict[str, Any], model: str, raw: bytes | None) -> bytes:
    """The JSON bytes sent upstream: the client's own bytes when nothing changes.

    ``raw`` is the client's body when ``payload`` is exactly its parse (else None);
    it is re-encoded only when the upstream's model name differs from the one asked.
    """
    if raw is not None and payload.get("model") == model and _utf8_object(raw):
        return raw
    body = payload
    if payload.get("model") != model:
        body = dict(payload)
        body["model"] = model
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(slots=True)
class Ctx:
    """Per-request bookkeeping, written to the decision log at the end."""

    request_id: str
    endpoint: str
    client: str | None = None
    t0: float = field(default_factory=time.perf_counter)
    model: str | None = None
    bucket: str | None = None
    route: str | None = None
    reason: str = ""
    upstream: str | None = None
    status: int = 0
    ttft_ms: float | None = None
    fallback: list[str] = field(default_factory=list)
    est_tokens: int = 0
    has_image: bool = False
    error: str | None = None

    def headers(self) -> dict[str, str]:
        """The X-Hearth-* response headers."""
        reason = ";".join([self.reason, *self.fallback]) if self.fallback else self.reason
        h = {"X-Request-Id": self.request_id, "X-Hearth-Reason": reason}
        if self.route:
            h["X-Hearth-Route"] = self.route
        if self.upstream:
            h["X-Hearth-Upstream"] = self.upstream
        return h


@dataclass(slots=True)
class Busy:
    """All candidate capacity is taken (answer 429/503 with Retry-After)."""

    status: int
    message: str
    retry_after: float


@dataclass(slots=True)
class Unavailable:
    """No upstream of the route can be used (down, asleep past deadline, blind)."""

    message: str
    timed_out: bool = False
    asleep: bool = False  # wake: confirm and not asked: the answer says how to ask


class Failed(Exception):
    """An upstream failed before the first byte reached the client.

    ``unreachable``: no connection could be made at all (refused, no route, connect
    timeout) -- what a host that went to sleep since its last probe looks like.
    """

    def __init__(self, message: str, timed_out: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message, self.timed_out, self.unreachable = message, timed_out, unreachable


class Proxy:
    """Sends one decided request to an upstream, falling back per policy."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    # -- capacity -------------------------------------------------------------------

    def _candidates(self, route: str, pin: tuple[str, ...] | None, image: bool,
                    tried: set[str], rc: RouteCfg | None = None) -> list[Upstream]:
        """The upstreams to try: ``pin``'s, else the route's (``rc``: its config, if the
        caller has it already), minus those tried and, for an image, the blind ones."""
        ups = self.state.upstreams
        names = pin if pin else (rc or self.state.cfg.route(route)).upstreams
        return [ups[n] for n in names
                if n in ups and n not in tried and (not image or ups[n].vision)]

    async def _acquire(self, request: web.Request, route: str, primary: bool,
                       pin: tuple[str, ...] | None, d: Decision, tried: set[str],
                       ctx: Ctx) -> Upstream | Busy | Unavailable:
        rc = self.state.cfg.route(route)
        cands = self._candidates(route, pin, d.has_image, tried, rc)
        if not cands:
            why = "no vision-capable upstream" if d.has_image else "no upstream left to try"
            return Unavailable(f"{_where(route)}: {why}")
        awake = [u for u in cands if u.usable()]
        held = False  # this request was held through a wake (admitted under the host's hold bound)
        if not awake:
            sleepy = [u for u in cands if u.sleeps and u.state in (ASLEEP, WAKING)]
            if not sleepy:
                return Unavailable(f"{_where(route)}: upstream "
                                   f"{', '.join(u.name for u in cands)} down")
            choice = wake_choice(rc.wake, wake_asked(request.headers))
            if choice == "confirm":
                ctx.fallback.append(f"asleep:{sleepy[0].name}:not_asked")
                return Unavailable(
                    f"upstream '{sleepy[0].name}' is asleep and route '{route}' wakes it only when "
                    f"asked: send the request again with the header '{WAKE_HEADER}: 1' (waking takes "
                    f"up to {sleepy[0].cfg.sleep.ready_timeout_s:g}s)", asleep=True)
            if choice == "spill":
                got = self._wake_spill(route, sleepy[0], d, tried, ctx)
                if got is not None:
                    return got
            ok = await self.state.health.ensure_awake(sleepy[0])
            if ok is None:
                return Busy(503, f"too many requests waiting for '{sleepy[0].name}' to wake", 5)
            if not ok:
                return Unavailable(f"upstream '{sleepy[0].name}' did not wake in time",
                                   timed_out=True)
            ctx.fallback.append(f"woke:{sleepy[0].name}")
            awake = [sleepy[0]]
            held = True
        for u in awake:
            if u.try_acquire():
                return u
        # its own slot is free but its server is answering for another model: wait for
        # the turn (bounded by the route's queue) rather than make the server swap
        shared = next((u for u in awake if u.blocked_by_server()), None)
        if primary and rc.on_busy == "spill":
            for s in rc.spill:
                if s in self.state.drained:
                    continue
                for u in self._candidates(s, None, d.has_image, tried):
                    if u.usable() and u.try_acquire():
                        ctx.fallback.append(f"spill:{route}->{s}:{awake[0].name}_saturated")
                        self.state.metrics.fallbacks.labels("spill", route, s).inc()
                        ctx.route = s
                        return u
            if shared is None and not held:
                return Busy(429, f"route '{route}' is saturated and so is its spill chain "
                                 f"{rc.spill}", 1)
        if rc.on_busy == "queue" or shared is not None or held:
            target = shared or awake[0]
            # a request held through the wake was admitted then (sleep.max_waiters): it waits
            # for its turn in arrival order; the queue's bound is for arrivals to an awake box
            bound = max(rc.queue.max, target.cfg.sleep.max_waiters) if held else rc.queue.max
            res = await target.acquire_queued(bound, rc.queue.timeout_s)
            if res == "ok":
                if shared is not None:
                    ctx.fallback.append(f"waited_for_server:{target.name}")
                return target
            if res == "full":
                return Busy(429, f"route '{route}' is saturated and its queue is full "
                                 f"({bound})", 1)
            return Busy(503, f"route '{route}': no slot within {rc.queue.timeout_s:g}s", 5)
        return Busy(429, f"{_where(route)} is busy ({awake[0].slots} slots in use)", 1)

    def _wake_spill(self, route: str, sleepy: Upstream, d: Decision, tried: set[str],
                    ctx: Ctx) -> Upstream | None:
        """wake: spill: wake ``sleepy`` in the background and take a slot of an awake
        upstream of the route's spill routes, then its failover chain (None: nothing
        awake there either, so the caller holds the request for the wake)."""
        st = self.state
        rc = st.cfg.route(route)
        for alt in [*rc.spill, *st.policy.chains.get(route, [])]:
            if alt == route or alt in st.drained:
                continue
            for u in self._candidates(alt, None, d.has_image, tried):
                if u.usable() and u.try_acquire():
                    st.health.start_wake(sleepy)
                    ctx.fallback.append(f"wake-spill:{route}->{alt}:{sleepy.name}_waking")
                    st.metrics.fallbacks.labels("wake_spill", route, alt).inc()
                    ctx.route = alt
                    return u
        return None

    # -- main entry -----------------------------------------------------------------

    async def handle(self, request: web.Request, ctx: Ctx, d: Decision,
                     payload: dict[str, Any], path: str, stream: bool,
                     ndjson: bool = False, engines: frozenset[str] | None = None,
                     raw: bytes | None = None) -> web.StreamResponse:
        """Serve a request along its route, spill and failover chains.

        ``raw``: the client's body bytes if ``payload`` is their unmodified parse
        (forwarded as they are when the upstream's model name is the one asked).
        """
        st = self.state
        pol = st.policy
        route = d.route
        if route in st.drained and not d.pinned:
            alt = next((r for r in pol.chains.get(route, []) if r not in st.drained), None)
            if alt is None:
                ctx.route = route
                return self._err(ctx, 503, f"route '{route}' is drained", "route_drained",
                                 retry_after=30)
            ctx.fallback.append(f"drained:{route}->{alt}")
            st.metrics.fallbacks.labels("drain", route, alt).inc()
            route = alt
        chain = pol.chains.get(route, [])  # read only: a failover slices a new list
        tried: set[str] = set()
        woken: set[str] = set()
        pin = d.upstreams
        primary = True
        last_status, last_msg = 503, ""  # the message is written when it is needed
        asleep_msg: str | None = None  # a route that wakes only when asked said how to ask
        while True:
            ctx.route = route
            got = await self._acquire(request, route, primary, pin, d, tried, ctx)
            if isinstance(got, Busy):
                if pol.cfg.route(d.route).cloud_fallback and engines is None:
                    fb = await cloud.fallback(request, st, ctx, d, payload, path, "busy")
                    if fb is not None:
                        return fb
                return self._err(ctx, got.status, got.message, "server_busy",
                                 retry_after=got.retry_after)
            if isinstance(got, Upstream):
                if engines is not None and got.cfg.engine not in engines:
                    got.release()
                    tried.add(got.name)
                    last_status, last_msg = 404, (f"upstream '{got.name}' is not "
                                                  f"{'/'.join(sorted(engines))}")
                else:
                    try:
                        return await self._attempt(request, got, ctx, payload, path, stream,
                                                   ndjson, raw)
                    except Failed as exc:
                        if self._asleep_since_probe(got, exc, woken, ctx):
                            continue  # _acquire now wakes it (one magic packet) and holds us
                        tried.add(got.name)
                        kind = "timeout" if exc.timed_out else "error"
                        st.metrics.upstream_errors.labels(got.name, kind).inc()
                        got.mark_failure(exc.message, st.cfg.health.cooldown_s)
                        last_status = 504 if exc.timed_out else 502
                        last_msg = f"upstream '{got.name}' failed: {exc.message}"
                        ctx.fallback.append(f"failed:{got.name}:{kind}")
                        if any(u.usable() for u in self._candidates(ctx.route or route, pin,
                                                                    d.has_image, tried)):
                            route = ctx.route or route
                            continue
            else:
                last_status = 504 if got.timed_out else 503
                last_msg = got.message
                asleep_msg = got.message if got.asleep else asleep_msg
            last_route = ctx.route or route
            nxt = next((r for r in chain if r not in st.drained
                        and self._candidates(r, None, d.has_image, tried)), None)
            chain = chain[chain.index(nxt) + 1:] if nxt else []
            if nxt is None:
                if pol.cfg.route(d.route).cloud_fallback and engines is None:
                    why = {502: "error", 504: "timeout"}.get(last_status, "down")
                    fb = await cloud.fallback(request, st, ctx, d, payload, path, why)
                    if fb is not None:
                        return fb
                if asleep_msg is not None and last_status == 503:
                    return self._err(ctx, 503, asleep_msg, "upstream_asleep")
                if st.cfg.route(last_route).terminal or st.cfg.route(route).terminal:
                    return self._err(ctx, 503, f"{last_msg} (route '{last_route}' is "
                                     "terminal: no downgrade)", "terminal_route_unavailable",
                                     retry_after=5)
                code = {502: "upstream_error", 504: "upstream_timeout"}.get(
                    last_status, "no_upstream")
                return self._err(ctx, last_status, last_msg or f"{_where(route)} unavailable", code,
                                 retry_after=5 if last_status == 503 else None)
            ctx.fallback.append(f"failover:{last_route}->{nxt}")
            st.metrics.fallbacks.labels("failover", last_route, nxt).inc()
            route, primary, pin = nxt, False, None

    def _asleep_since_probe(self, up: Upstream, exc: Failed, woken: set[str], ctx: Ctx) -> bool:
        """A sleeper that cannot be reached went to sleep since its last probe: hold
        it asleep so the request wakes it, instead of failing over (once per request)."""
        if not (exc.unreachable and up.sleeps) or up.name in woken:
            return False
        woken.add(up.name)
        up.state, up.last_error = ASLEEP, f"unreachable, taken as asleep: {exc.message}"
        ctx.fallback.append(f"unreachable:{up.name}:asleep")
        return True

    def _err(self, ctx: Ctx, status: int, message: str, code: str,
             retry_after: float | None = None) -> web.Response:
        ctx.status, ctx.error = status, message
        return error_response(status, message, None, code, ctx.headers(), retry_after)

    # -- one attempt ----------------------------------------------------------------

    async def _attempt(self, request: web.Request, up: Upstream, ctx: Ctx,
                       payload: dict[str, Any], path: str, stream: bool,
                       ndjson: bool, raw: bytes | None = None) -> web.StreamResponse:
        """Forward to one upstream holding one of its slots (always released)."""
        t = self._timeouts(up.name)
        ctx.upstream = up.name
        try:  # an Ollama upstream's keep-alive (and the translation it may need)
            fwd = ollama.prepare(up, path, payload)
        except ollama.BadRequest as exc:
            up.release()
            return self._err(ctx, 400, str(exc), "invalid_request")
        data = fwd.data or upstream_body(payload, up.cfg.model, raw)
        tr = fwd.translator
        swap = up.begin_swap_watch()
        sess = up.ensure_session(t.connect_s)
        deadline = asyncio.get_running_loop().time() + t.total_s
        resp: aiohttp.ClientResponse | None = None
        done = False
        try:
            try:
                with Deadline(t.first_byte_s if stream else t.total_s):
                    resp = await sess.post(
                        _upstream_url(up.cfg.base_url, fwd.path), data=data,
                        headers=_JSON_HEADERS,
                        # no sock_read: a stream's idle limit is _relay's StreamDeadline
                        timeout=_client_timeout(t.connect_s, None))
                    if resp.status >= 500:
                        detail = (await resp.content.read(300)).decode("utf-8", "replace")
                        raise Failed(f"HTTP {resp.status}: {detail}")
                    if not stream or resp.status != 200:
                        answer = await resp.read()
                        done = True
                        up.end_swap_watch(swap, resp.status, tr)
                        if tr is not None:
                            answer = tr.full(resp.status, answer)
                        return self._full(ctx, resp, answer, tr)
                    first = await resp.content.readany()
                    if not first:
                        raise Failed("closed the stream before the first byte")
                    up.end_swap_watch(swap, resp.status, tr)
            except aiohttp.ConnectionTimeoutError:
                raise Failed("connect timed out", timed_out=True, unreachable=True) from None
            except TimeoutError:
                raise Failed("timed out before the first byte", timed_out=True) from None
            except aiohttp.ClientConnectorError as exc:
                raise Failed(f"cannot connect: {exc}"[:300], unreachable=True) from None
            except _CLIENT_ERRORS as exc:
                raise Failed(f"{type(exc).__name__}: {exc}"[:300]) from None
            out, done = await self._relay(request, resp, ctx, first, deadline, ndjson, tr)
            if not done and ctx.status == 502:
                up.mark_failure(ctx.error or "mid-stream failure",
                                self.state.cfg.health.cooldown_s)
            return out
        finally:
            if resp is not None:
                if done:
                    resp.release()
                else:
                    resp.close()  # drop the connection: the upstream sees the close
            up.release()

    def _timeouts(self, upstream: str | None) -> Timeouts:
        """The upstream's own timeouts (merged with the policy's at load)."""
        st = self.state
        return st.policy.timeouts.get(upstream or "") or st.cfg.timeouts

    def _full(self, ctx: Ctx, resp: aiohttp.ClientResponse, raw: bytes,
              tr: ollama.Translator | None = None) -> web.Response:
        ctx.status = resp.status
        h = ctx.headers()
        h["Content-Type"] = (resp.headers.get("Content-Type", "application/json")
                             if tr is None else "application/json")
        if resp.status == 200:
            spend.account_json(self.state, ctx, self._model_label(ctx), raw)
        return web.Response(status=resp.status, body=raw, headers=h)

    def _model_label(self, ctx: Ctx) -> str:
        up = self.state.upstreams.get(ctx.upstream or "")
        return up.cfg.model if up is not None else ctx.upstream or "-"

    async def _relay(self, request: web.Request, resp: aiohttp.ClientResponse, ctx: Ctx,
                     first: bytes, deadline: float, ndjson: bool,
                     tr: ollama.Translator | None = None
                     ) -> tuple[web.StreamResponse, bool]:
        """Stream the upstream body to the client; (response, ended cleanly).

        ``tr``: the upstream speaks Ollama's NDJSON and the client OpenAI's SSE.
        """
        ctx.status = resp.status
        h = ctx.headers()
        for k in _PASS_HEADERS:
            v = resp.headers.get(k)
            if v is not None:
                h[k] = v
        if tr is not None:
            h["Content-Type"] = tr.content_type
            first = tr.feed(first)
        h.setdefault("Content-Type", "text/event-stream")
        out = FirstChunkResponse(status=resp.status, headers=h)
        try:
            await out.prepare(request)
            await out.write(first)
        except _CLIENT_ERRORS:
            ctx.status, ctx.error = 499, "client disconnected"
            return out, False
        ctx.ttft_ms = (time.perf_counter() - ctx.t0) * 1000
        sep = b"\n" if ndjson else b"data:"
        events, prev, tail = first.count(sep), b"", first
        try:
            with StreamDeadline(deadline, self._timeouts(ctx.upstream).idle_s) as dl:
                async for chunk in resp.content.iter_any():
                    if tr is not None:
                        chunk = tr.feed(chunk)
                    events += chunk.count(sep)
                    prev, tail = tail, chunk
                    try:
                        await out.write(chunk)
                    except _CLIENT_ERRORS:
                        ctx.status, ctx.error = 499, "client disconnected"
                        return out, False
                    dl.touch()
            if tr is not None:
                last = tr.end()
                events += last.count(sep)
                prev, tail = tail, tail + last
                try:
                    await out.write(last)
                except _CLIENT_ERRORS:
                    ctx.status, ctx.error = 499, "client disconnected"
                    return out, False
            spend.account(self.state, ctx, self._model_label(ctx),
                          spend.usage_in_stream_tail(prev[-4096:] + tail),
                          max(0, events - (b"[DONE]" in tail or ndjson)))
            return out, True
        except (TimeoutError, *_CLIENT_ERRORS) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            msg = f"upstream '{ctx.upstream}' failed mid-stream: {what}"
            ctx.error, ctx.status = msg, 502
            with contextlib.suppress(*_CLIENT_ERRORS):
                if ndjson:
                    await out.write(json.dumps({"error": msg}).encode() + b"\n")
                else:
                    await out.write(sse_error_event(msg))
            return out, False


__all__ = ["Ctx", "Proxy", "error_body"]
