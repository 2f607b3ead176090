"""The gateway's one configuration file (its "policy"), as a pydantic model.

The file is YAML or JSON. It is normally rendered from the inventory by
:func:`hearth.gateway.from_inventory.gateway_config_from_inventory`, but it is a
plain, documented format of its own (see ``docs/gateway.md``).

:func:`load_config` parses and validates a file; every error names the key path
(``routes.code.spill[0]: unknown route 'chatt'``). A config that loads is
internally consistent: every route, bucket and upstream it names exists.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Engine = Literal["vllm", "ollama", "lmstudio", "openai"]
OnBusy = Literal["spill", "queue", "busy"]
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Timeouts(_Model):
    """Upstream timeouts, in seconds."""

    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(120.0, gt=0)
    idle_s: float = Field(60.0, gt=0)
    total_s: float = Field(900.0, gt=0)


class TimeoutOverrides(_Model):
    """One upstream's own timeouts (None: the policy's ``timeouts``); ``probe_s`` is
    its health probe's (None: ``health.timeout_s``). Seed 003's remote tier: 8 s."""

    connect_s: float | None = Field(None, gt=0)
    first_byte_s: float | None = Field(None, gt=0)
    idle_s: float | None = Field(None, gt=0)
    total_s: float | None = Field(None, gt=0)
    probe_s: float | None = Field(None, gt=0)


def merged_timeouts(base: Timeouts, own: TimeoutOverrides,
                    sleeper_connect_s: float | None = None) -> Timeouts:
    """An upstream's effective timeouts: its own where set, else the policy's; a sleeper's
    connect timeout is at most its ``sleep.connect_s`` unless it sets its own."""
    set_ = {k: v for k, v in own.model_dump(exclude={"probe_s"}).items() if v is not None}
    if sleeper_connect_s is not None and "connect_s" not in set_:
        set_["connect_s"] = min(base.connect_s, sleeper_connect_s)
    return base.model_copy(update=set_) if set_ else base


class HealthCfg(_Model):
    """Background prober settings."""

    interval_s: float = Field(5.0, gt=0)
    timeout_s: float = Field(2.0, gt=0)
    down_after: int = Field(2, ge=1)
    degraded_latency_ms: float = Field(1500.0, gt=0)
    cooldown_s: float = Field(10.0, ge=0)
    wake_probe_interval_s: float = Field(0.1, gt=0)


class LimitsCfg(_Model):
    """What one client connection may cost before (and after) it proves its key."""

    header_timeout_s: float = Field(10.0, gt=0, le=300)
    body_timeout_s: float = Field(30.0, gt=0, le=3600)
    keepalive_timeout_s: float = Field(75.0, gt=0, le=3600)
    connections_per_peer: int = Field(256, ge=1)


class WolCfg(_Model):
    """Where magic packets go (UDP)."""

    address: str = "255.255.255.255"
    port: int = Field(9, ge=1, le=65535)


class SleepCfg(_Model):
    """Sleep / Wake-on-LAN facts of the upstream's host."""

    sleeps: bool = False
    mac: str | None = None
    ready_timeout_s: float = Field(90.0, gt=0)
    keep_warm_minutes: float = Field(30.0, gt=0)
    max_waiters: int = Field(64, ge=1)
    # a sleeper's connect timeout (unless the upstream sets its own ``timeouts.connect_s``):
    # a box that suspended since its last probe is taken as asleep and woken after this
    connect_s: float = Field(1.5, gt=0)

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is not None and not _MAC_RE.match(v):
            raise ValueError(f"not a MAC address: {v!r}")
        return v


class UpstreamCfg(_Model):
    """One serving endpoint (one served model on one host)."""

    engine: Engine
    base_url: str
    model: str
    slots: int = Field(1, ge=1)
    vision: bool = False
    host: str = ""
    sleep: SleepCfg = SleepCfg()
    timeouts: TimeoutOverrides = TimeoutOverrides()
    # Ollama: the keep_alive the gateway sends with every request to this model (seconds,
    # negative = forever, or a Go duration such as "24h"); None: the server's default
    keep_alive: float | str | None = None
    # upstreams with the same ``server`` share one engine process (an Ollama server):
    # at most ``max_loaded_models`` of their models answer at once (None: no limit)
    server: str | None = None
    max_loaded_models: int | None = Field(None, ge=1)
    # the card the inventory's VRAM plan places this model on ("<host>/gpu<N>", described
    # under ``gpus`` when known) and the GiB it holds there; upstreams with the same ``gpu``
    # share that card (cards.py). Display only: it admits nothing by itself.
    gpu: str | None = None
    gpu_gb: float | None = Field(None, ge=0)

    @field_validator("keep_alive")
    @classmethod
    def _keep_alive(cls, v: float | str | None) -> float | str | None:
        if v is not None:
            from .ollama import keep_alive_seconds
            keep_alive_seconds(v)  # raises ValueError with the reason
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class GpuCfg(_Model):
    """A card upstreams are placed on: ``host`` and ``index`` as node telemetry labels
    it (``hearth_gpu_*{host,gpu}``), its size and the plan's worst case on it."""

    host: str = ""
    index: int = Field(0, ge=0)
    model: str = ""
    vram_gb: float = Field(gt=0)
    usable_gb: float = Field(gt=0)
    planned_gb: float | None = Field(None, ge=0)  # what can be resident at once, per the plan
    unified_memory: bool = False


class QueueCfg(_Model):
    """A bounded wait for a free slot."""

    max: int = Field(8, ge=1)
    timeout_s: float = Field(30.0, gt=0)


class RouteCfg(_Model):
    """A route: the upstreams that serve it and what to do when they cannot."""

    upstreams: list[str] = Field(min_length=1)
    on_busy: OnBusy = "busy"
    spill: list[str] = []
    failover: list[str] = []
    terminal: bool = False
    wake: Literal["hold", "spill", "confirm"] = "hold"  # all its upstreams asleep: wakechoice.py
    queue: QueueCfg = QueueCfg()
    cloud_fallback: str | None = None  # "<provider>/<alias>": last resort, opt-in
    private: bool = False  # nothing of this route ever goes to a cloud model
    cloud_no_retention: bool = False  # its cloud fallback must retain nothing


# What a request pinned to an upstream on no route goes by (its concrete model name
# resolves to route ''): that upstream only, no spill, failover, queue or cloud fallback.
UNROUTED = RouteCfg.model_construct(upstreams=[])


class BucketCfg(_Model):
    """A keyword bucket: matching keywords score their weight toward `route`."""

    route: str
    keywords: dict[str, float]

    @field_validator("keywords", mode="before")
    @classmethod
    def _kw(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {str(k): 1.0 for k in v}
        return v


class SizePromotion(_Model):
    """Route by estimated prompt size: ``promote[bucket][tier]``."""

    thresholds: list[int] = []
    promote: dict[str, list[str]] = {}


class RoutingCfg(_Model):
    """How requests are classified into routes."""

    alias_prefix: str = "hearth"
    default_route: str
    image_route: str | None = None
    embedding_route: str | None = None
    tie_break: list[str] = []
    classify_scope: Literal["last_user", "user", "all"] = "last_user"
    buckets: dict[str, BucketCfg] = {}
    size_promotion: SizePromotion = SizePromotion()


class CloudModelCfg(_Model):
    """One cloud alias: the provider's model id, its limits, data policy and price."""

    id: str = Field(min_length=1)
    per_minute: int | None = Field(None, ge=1)
    per_day: int | None = Field(None, ge=1)
    retains_prompts: bool | None = None  # None: unknown (treated as "retains")
    trains_on_prompts: bool | None = None
    vision: bool = False
    context: int | None = Field(None, gt=0)
    usd_per_mtok_in: float | None = Field(None, ge=0)
    usd_per_mtok_out: float | None = Field(None, ge=0)

    @property
    def retains_nothing(self) -> bool:
        """Known to neither retain nor train on prompts."""
        return self.retains_prompts is False and self.trains_on_prompts is not True


def _model_entry(v: Any) -> Any:
    return {"id": v} if isinstance(v, str) else v


class CloudProviderCfg(_Model):
    """An OpenAI-compatible cloud provider; its aliases are reached as clients allow."""

    base_url: str
    api_key_file: str | None = None
    models: dict[str, CloudModelCfg] = Field(min_length=1)

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v: Any) -> Any:
        return {k: _model_entry(x) for k, x in v.items()} if isinstance(v, dict) else v


CloudMode = Literal["none", "escalation", "by_name"]


class ClientCloudCfg(_Model):
    """How a client may reach cloud models (the default: not at all)."""

    mode: CloudMode = "none"
    fallback: bool = False  # may its routes' cloud_fallback serve it
    providers: list[str] | None = None  # None: every provider
    aliases: list[str] | None = None  # "<provider>/<alias>"; None: every alias
    no_retention: bool = False  # only aliases known to retain nothing


class BudgetCfg(_Model):
    """Per-client daily budget (UTC day); None: unlimited."""

    tokens_per_day: int | None = Field(None, ge=1)
    usd_per_day: float | None = Field(None, gt=0)


def _cloud_entry(v: Any) -> Any:
    if isinstance(v, bool):  # the old switch: true = escalation with the header
        return {"mode": "escalation" if v else "none"}
    return v


class ClientCfg(_Model):
    """A client API key (only its sha256 is stored) and what it may do."""

    key_sha256: str
    routes: list[str] | None = None
    rate_per_minute: int | None = Field(None, ge=1)
    cloud: ClientCloudCfg = ClientCloudCfg()
    budget: BudgetCfg = BudgetCfg()

    @field_validator("cloud", mode="before")
    @classmethod
    def _cloud(cls, v: Any) -> Any:
        return _cloud_entry(v)

    @field_validator("key_sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        v = v.lower()
        if not _SHA_RE.match(v):
            raise ValueError("must be 64 lowercase hex characters (sha256 of the key)")
        return v


class LogsCfg(_Model):
    """Where the JSONL logs go (None: not written)."""

    decision_log: str | None = None
    cloud_audit_log: str | None = None


class SanitiseCfg(_Model):
    """Extra names to scrub from cloud payloads (inventory host names etc.)."""

    hostnames: list[str] = []


class GatewayConfig(_Model):
    """The whole gateway policy."""

    listen: list[str] = ["127.0.0.1:4000"]
    admin_token_file: str | None = None
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    timeouts: Timeouts = Timeouts()
    limits: LimitsCfg = LimitsCfg()
    health: HealthCfg = HealthCfg()
    wol: WolCfg = WolCfg()
    upstreams: dict[str, UpstreamCfg] = Field(min_length=1)
    routes: dict[str, RouteCfg] = Field(min_length=1)
    routing: RoutingCfg
    clouds: dict[str, CloudProviderCfg] = {}
    clients: dict[str, ClientCfg] = {}
    logs: LogsCfg = LogsCfg()
    sanitise: SanitiseCfg = SanitiseCfg()
    allow_unauthenticated_loopback: bool = True
    # operator-chosen model names -> "<alias_prefix>/<route>", "<alias_prefix>/auto"
    # or a served model name (see hearth/gateway/aliases.py)
    model_aliases: dict[str, str] = {}
    # peers the admin API answers (None: any peer with the token); a LAN listener
    # is left out so the admin API never reaches the LAN
    admin_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    # peers that may call /healthz, /readyz and /metrics without a client key (None:
    # any peer); with a LAN listener every LAN request needs a key, these included
    keyless_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    # the cards upstreams are placed on ("<host>/gpu<N>", from the inventory's VRAM plan)
    gpus: dict[str, GpuCfg] = {}

    def route(self, name: str) -> RouteCfg:
        """Route ``name``'s policy; ``''`` (a pin to an upstream on no route): :data:`UNROUTED`."""
        return self.routes.get(name, UNROUTED)


class ConfigError(ValueError):
    """The policy is invalid; ``errors`` lists ``key.path: reason`` strings."""

    def __init__(self, errors: list[str], source: str = "") -> None:
        self.errors = errors
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(errors))


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def check_references(cfg: GatewayConfig) -> list[str]:
    """Cross-reference checks pydantic cannot do; returns ``path: reason`` errors."""
    errs: list[str] = []
    routes, ups = cfg.routes, cfg.upstreams
    for name in ups:
        if not _NAME_RE.match(name):
            errs.append(f"upstreams.{name}: name may only use letters, digits and ._:-")
    for name, u in ups.items():
        if u.sleep.sleeps and not u.sleep.mac:
            errs.append(f"upstreams.{name}.sleep.mac: a sleeping upstream needs a MAC")
    for rname, r in routes.items():
        if not _NAME_RE.match(rname):
            errs.append(f"routes.{rname}: name may only use letters, digits and ._:-")
        for i, u in enumerate(r.upstreams):
            if u not in ups:
                errs.append(f"routes.{rname}.upstreams[{i}]: unknown upstream {u!r}")
        for key in ("spill", "failover"):
            for i, t in enumerate(getattr(r, key)):
                if t.startswith("cloud/"):
                    errs.append(f"routes.{rname}.{key}[{i}]: cloud models never appear in chains")
                elif t not in routes:
                    errs.append(f"routes.{rname}.{key}[{i}]: unknown route {t!r}")
                elif t == rname:
                    errs.append(f"routes.{rname}.{key}[{i}]: a route cannot fall back to itself")
        if r.terminal and (r.spill or r.failover):
            errs.append(f"routes.{rname}: a terminal route has no spill or failover chain")
        if r.on_busy == "spill" and not r.spill:
            errs.append(f"routes.{rname}.spill: on_busy is 'spill' but the chain is empty")
    rt = cfg.routing
    for key in ("default_route", "image_route", "embedding_route"):
        v = getattr(rt, key)
        if v is not None and v not in routes:
            errs.append(f"routing.{key}: unknown route {v!r}")
    if rt.image_route is not None and rt.image_route in routes and not any(
        ups[u].vision for u in routes[rt.image_route].upstreams if u in ups
    ):
        errs.append(f"routing.image_route: route {rt.image_route!r} has no vision upstream")
    for b, bc in rt.buckets.items():
        if bc.route not in routes:
            errs.append(f"routing.buckets.{b}.route: unknown route {bc.route!r}")
        if not bc.keywords:
            errs.append(f"routing.buckets.{b}.keywords: empty")
        for kw in bc.keywords:
            if not kw.strip():
                errs.append(f"routing.buckets.{b}.keywords: empty keyword")
    for i, b in enumerate(rt.tie_break):
        if b not in rt.buckets:
            errs.append(f"routing.tie_break[{i}]: unknown bucket {b!r}")
    sp = rt.size_promotion
    if sp.thresholds != sorted(set(sp.thresholds)):
        errs.append("routing.size_promotion.thresholds: must be strictly increasing")
    for b, lst in sp.promote.items():
        if b not in rt.buckets and b != "unknown":
            errs.append(f"routing.size_promotion.promote.{b}: unknown bucket {b!r}")
        if len(lst) != len(sp.thresholds) + 1:
            errs.append(
                f"routing.size_promotion.promote.{b}: needs {len(sp.thresholds) + 1} routes "
                f"(one per size tier), got {len(lst)}"
            )
        for i, t in enumerate(lst):
            if t not in routes:
                errs.append(f"routing.size_promotion.promote.{b}[{i}]: unknown route {t!r}")
    for c, cc in cfg.clients.items():
        for i, r in enumerate(cc.routes or []):
            if r not in routes:
                errs.append(f"clients.{c}.routes[{i}]: unknown route {r!r}")
    seen: dict[str, str] = {}
    for c, cc in cfg.clients.items():
        if cc.key_sha256 in seen:
            errs.append(f"clients.{c}.key_sha256: same key as client {seen[cc.key_sha256]!r}")
        seen[cc.key_sha256] = c
    errs += _check_cloud_refs(cfg)
    from .aliases import check_aliases
    errs += check_aliases(cfg)
    for p, pc in cfg.clouds.items():
        if "/" in p:
            errs.append(f"clouds.{p}: provider names may not contain '/'")
        if not pc.base_url.startswith(("http://", "https://")):
            errs.append(f"clouds.{p}.base_url: must start with http:// or https://")
    for i, addr in enumerate(cfg.listen):
        host, sep, port = addr.rpartition(":")
        if not sep or not host or not port.isdigit():
            errs.append(f"listen[{i}]: expected HOST:PORT, got {addr!r}")
    return errs


def _alias_ok(cfg: GatewayConfig, ref: str) -> bool:
    p, _, a = ref.partition("/")
    return p in cfg.clouds and a in cfg.clouds[p].models


def _check_cloud_refs(cfg: GatewayConfig) -> list[str]:
    """Cloud fallbacks and client cloud lists name aliases that exist, and obey policy."""
    errs: list[str] = []
    for rname, r in cfg.routes.items():
        ref = r.cloud_fallback
        if ref is None:
            continue
        where = f"routes.{rname}.cloud_fallback"
        if not _alias_ok(cfg, ref):
            errs.append(f"{where}: unknown cloud alias {ref!r} (want <provider>/<alias>)")
            continue
        if r.terminal:
            errs.append(f"{where}: a terminal route never falls back, not even to the cloud")
        if r.private:
            errs.append(f"{where}: a private route never sends anything to the cloud")
        p, _, a = ref.partition("/")
        if r.cloud_no_retention and not cfg.clouds[p].models[a].retains_nothing:
            errs.append(f"{where}: {ref} may retain or train on prompts "
                        "(the route has cloud_no_retention)")
    for c, cc in cfg.clients.items():
        for i, p in enumerate(cc.cloud.providers or []):
            if p not in cfg.clouds:
                errs.append(f"clients.{c}.cloud.providers[{i}]: unknown provider {p!r}")
        for i, ref in enumerate(cc.cloud.aliases or []):
            if not _alias_ok(cfg, ref):
                errs.append(f"clients.{c}.cloud.aliases[{i}]: unknown cloud alias {ref!r}")
    return errs


def parse_config(data: Any, source: str = "") -> GatewayConfig:
    """Validate a decoded mapping; raise :class:`ConfigError` naming key paths."""
    if not isinstance(data, dict):
        raise ConfigError(["<root>: expected a mapping"], source)
    try:
        cfg = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()], source
        ) from None
    errs = check_references(cfg)
    if errs:
        raise ConfigError(errs, source)
    return cfg


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a YAML or JSON policy file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"<file>: cannot read: {exc.strerror}"], str(p)) from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError([f"<file>: not valid YAML/JSON: {exc}"], str(p)) from None
    return parse_config(data, str(p))


def dump_config(cfg: GatewayConfig) -> str:
    """Serialise a config to YAML (the format the deploy writes)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
