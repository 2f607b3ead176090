"""The gateway's live state: the current policy plus everything that outlives a reload."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import (
    ClientCfg,
    ConfigError,
    GatewayConfig,
    Timeouts,
    load_config,
    merged_timeouts,
)
from .health import Health
from .logs import JsonlLog
from .metrics import Metrics
from .recent import Recent
from .routing import Router
from .upstreams import Upstream, link_groups

log = logging.getLogger("hearth.gateway")


def _read_secret(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def failover_chains(cfg: GatewayConfig) -> dict[str, list[str]]:
    """Each route's failover chain, expanded transitively (in order, no repeats)."""
    out: dict[str, list[str]] = {}
    for name in cfg.routes:
        chain: list[str] = []
        todo = list(cfg.routes[name].failover)
        while todo:
            r = todo.pop(0)
            if r == name or r in chain:
                continue
            chain.append(r)
            todo.extend(cfg.routes[r].failover)
        out[name] = chain
    return out


@dataclass
class Policy:
    """A validated, compiled config. Swapped atomically on reload."""

    cfg: GatewayConfig
    router: Router
    chains: dict[str, list[str]]
    clients: dict[str, tuple[str, ClientCfg]]
    admin_token: str | None
    cloud_keys: dict[str, str | None]
    timeouts: dict[str, Timeouts] = field(default_factory=dict)  # per upstream, merged

    @classmethod
    def build(cls, cfg: GatewayConfig) -> Policy:
        """Compile a config (raises :class:`ConfigError` if it cannot be compiled)."""
        try:
            router = Router(cfg)
        except Exception as exc:  # e.g. a keyword that makes a bad regex
            raise ConfigError([f"routing: {exc}"]) from exc
        return cls(
            cfg=cfg,
            router=router,
            chains=failover_chains(cfg),
            clients={c.key_sha256: (n, c) for n, c in cfg.clients.items()},
            admin_token=_read_secret(cfg.admin_token_file),
            cloud_keys={p: _read_secret(c.api_key_file) for p, c in cfg.clouds.items()},
            timeouts={n: merged_timeouts(cfg.timeouts, u.timeouts,
                                         u.sleep.connect_s if u.sleep.sleeps else None)
                      for n, u in cfg.upstreams.items()},
        )


@dataclass
class RateBucket:
    """A token bucket of ``rate`` per minute."""

    rate: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """Take one token; return 0 if allowed, else seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate / 60.0)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) * 60.0 / self.rate


class GatewayState:
    """Everything the request handlers share."""

    def __init__(self, cfg: GatewayConfig, config_path: str | None = None) -> None:
        self.config_path = config_path
        self.policy = Policy.build(cfg)
        self.upstreams: dict[str, Upstream] = {n: Upstream(n, u) for n, u in
                                               cfg.upstreams.items()}
        link_groups(self.upstreams)
        self.drained: set[str] = set()
        self.metrics = Metrics(lambda: self.upstreams, lambda: self.policy.cfg.routes,
                               lambda: self.policy.cfg.gpus)
        self.health = Health(lambda: self.policy.cfg,
                             on_wake=lambda n: self.metrics.wakes.labels(n).inc(),
                             wake_log=self.metrics.wake)
        self.decisions = JsonlLog(cfg.logs.decision_log)
        self.recent = Recent()  # the status page's last decisions and latencies (memory only)
        self.audit = JsonlLog(cfg.logs.cloud_audit_log)
        self.rates: dict[str, RateBucket] = {}
        self.started = time.time()
        self.retired: list[Upstream] = []
        # called after every successful reload (the serving process re-settles its GC)
        self.after_reload: list[Callable[[], None]] = []

    @property
    def cfg(self) -> GatewayConfig:
        """The config in force."""
        return self.policy.cfg

    async def reload(self, cfg: GatewayConfig | None = None) -> dict[str, object]:
        """Load (or take) a new policy; on any error keep the old one and raise."""
        if cfg is None:
            if not self.config_path:
                raise ConfigError(["<file>: the gateway was not started from a file"])
            cfg = load_config(self.config_path)
        new = Policy.build(cfg)
        old = self.policy.cfg
        if cfg.listen != old.listen:
            log.warning("reload: listen addresses changed; a restart is needed to apply them")
        added, removed, changed = [], [], []
        for name, ucfg in cfg.upstreams.items():
            if name in self.upstreams:
                if self.upstreams[name].cfg != ucfg:
                    changed.append(name)
                self.upstreams[name].cfg = ucfg
            else:
                self.upstreams[name] = Upstream(name, ucfg)
                added.append(name)
        for name in list(self.upstreams):
            if name not in cfg.upstreams:
                removed.append(name)
                self.retired.append(self.upstreams.pop(name))
                await self.health.stop(name)
        link_groups(self.upstreams)
        self.drained &= set(cfg.routes)
        self.policy = new
        if cfg.logs.decision_log != self.decisions.path:
            self.decisions.close()
            self.decisions = JsonlLog(cfg.logs.decision_log)
        if cfg.logs.cloud_audit_log != self.audit.path:
            self.audit.close()
            self.audit = JsonlLog(cfg.logs.cloud_audit_log)
        self.rates.clear()
        self.health.start(self.upstreams)
        log.info("policy reloaded: %d routes, %d upstreams", len(cfg.routes), len(cfg.upstreams))
        for hook in self.after_reload:
            hook()
        return {"reloaded": True, "routes": sorted(cfg.routes), "upstreams_added": added,
                "upstreams_removed": removed, "upstreams_changed": changed}

    def client_for(self, key: str) -> tuple[str, ClientCfg] | None:
        """Look up a client by its API key (compared by sha256)."""
        return self.policy.clients.get(hashlib.sha256(key.encode()).hexdigest())

    def rate_check(self, name: str, c: ClientCfg) -> float:
        """0 if the client may make a request now, else seconds to wait."""
        if not c.rate_per_minute:
            return 0.0
        b = self.rates.get(name)
        if b is None or b.rate != c.rate_per_minute:
            b = self.rates[name] = RateBucket(float(c.rate_per_minute),
                                              float(c.rate_per_minute))
        return b.take()

    async def close(self) -> None:
        """Stop probers, close sessions and logs."""
        await self.health.stop()
        for u in [*self.upstreams.values(), *self.retired]:
            await u.close()
        self.decisions.close()
        self.audit.close()
