"""The one inventory: a typed model of the YAML file a person edits.

Attribute names mirror the YAML keys one to one. Unknown keys are refused
(``extra="forbid"``) so a typo is an error, not a silently ignored setting.
Checks that span several parts of the file (routes that exist, VRAM fit,
duplicate addresses...) live in :mod:`hearth.inventory.validate`.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from hearth.inventory.model_devices import ClientDevices
from hearth.inventory.model_reach import LanExposure, UpstreamTimeouts
from hearth.inventory.secrets import SecretRef

NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ROUTE_NAME = r"^[a-z0-9][a-z0-9._-]*$"
MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")
DURATION = re.compile(r"^(-1|0|\d+(\.\d+)?(ms|s|m|h))$")

Engine = Literal["ollama", "vllm", "lmstudio", "openai"]
KvCacheDtype = Literal["auto", "fp16", "f16", "bf16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "q8_0", "q4_0",
                       "turboquant_k8v4"]
DEFAULT_PORTS: dict[str, int] = {"ollama": 11434, "vllm": 8000, "lmstudio": 1234}


def _mac(value: str) -> str:
    value = value.strip().lower()
    if not MAC.match(value):
        raise ValueError("not a MAC address (want six hex pairs such as 'd8:bb:c1:30:60:12')")
    return value.replace("-", ":")


def _duration(value: str) -> str:
    if not DURATION.match(value):
        raise ValueError("not an Ollama keep-alive duration (want '0', '-1', '30s', '5m', '24h')")
    return value


def _keyword_weights(value: Any) -> Any:
    """Keywords may be a plain list (weight 1 each) or a mapping keyword -> weight."""
    if isinstance(value, list):
        return dict.fromkeys(value, 1.0)
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


MacAddress = Annotated[str, AfterValidator(_mac)]
KeepAlive = Annotated[str, AfterValidator(_duration)]
RouteName = Annotated[str, Field(pattern=ROUTE_NAME)]


class Strict(BaseModel):
    """Base for every inventory section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


AdminNetwork = IPv4Network | IPv6Network


class Lan(Strict):
    cidr: IPv4Network
    # One range or a list, IPv4 and/or IPv6 (e.g. [192.168.1.0/24, "fd00:1::/64"]).
    admin_cidr: AdminNetwork | list[AdminNetwork] | None = None

    @property
    def admin_networks(self) -> list[AdminNetwork]:
        """The ranges SSH is allowed from (defaults to the whole LAN)."""
        if self.admin_cidr is None:
            return [self.cidr]
        return list(self.admin_cidr) if isinstance(self.admin_cidr, list) else [self.admin_cidr]

    @property
    def admin(self) -> IPv4Network:
        """The first IPv4 range SSH is allowed from (the whole LAN when none is given)."""
        return next((n for n in self.admin_networks if isinstance(n, IPv4Network)), self.cidr)


class Overlay(Strict):
    kind: Literal["wireguard", "existing"] = "wireguard"
    cidr: IPv4Network
    port: int = Field(51820, ge=1, le=65535)
    interface: str = Field("wg0", pattern=r"^[a-zA-Z0-9_.-]{1,15}$")
    topology: Literal["mesh", "hub"] = "mesh"
    hub: str | None = None


class Ssh(Strict):
    user: str = "hearth"
    port: int = Field(22, ge=1, le=65535)
    key: str | None = None
    known_hosts: str | None = None
    root_login: bool = False


K3sComponent = Literal["coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"]


class K3s(Strict):
    """The cluster: ``server`` is the first server (it initialises the cluster).

    ``config`` goes into every node's /etc/rancher/k3s/config.yaml,
    ``server_config`` / ``agent_config`` into servers' / agents' only; their keys
    are k3s's own (checked against the pinned release's documented keys).
    """

    server: str
    version: str | None = None
    cluster_cidr: IPv4Network = IPv4Network("10.42.0.0/16")
    service_cidr: IPv4Network = IPv4Network("10.43.0.0/16")
    token: SecretRef | None = None
    flannel_backend: Literal["vxlan", "host-gw", "wireguard-native", "none"] = "vxlan"
    tls_san: list[str] = []
    disable: list[K3sComponent] = []
    gpu_labels: dict[str, str] = {"nvidia.com/gpu.present": "true"}
    gpu_taints: list[str] = []
    config: dict[str, Any] = {}
    server_config: dict[str, Any] = {}
    agent_config: dict[str, Any] = {}


class HostK3s(Strict):
    """Per-node k3s settings: extra labels, taints and config.yaml keys."""

    labels: dict[str, str] = {}
    taints: list[str] = []
    config: dict[str, Any] = {}


class Gateway(Strict):
    host: str
    port: int = Field(4000, ge=1, le=65535)
    admin_token: SecretRef
    timeouts: UpstreamTimeouts = UpstreamTimeouts()  # defaults for every upstream
    lan: LanExposure = LanExposure()  # opt-in: serve on the LAN address too


class AlertReceiver(Strict):
    """Where Alertmanager sends alerts: a Telegram bot, or any webhook (Home Assistant's
    ``/api/webhook/<id>``, a chat bridge). Secrets are references, resolved at deploy."""

    name: str = Field(pattern=NAME)
    kind: Literal["telegram", "webhook"]
    url: str | None = Field(None, pattern=r"^https?://")  # webhook
    bearer: SecretRef | None = None  # webhook: Authorization: Bearer <secret>
    bot_token: SecretRef | None = None  # telegram
    chat_id: int | None = None  # telegram


class HomeAssistant(Strict):
    """Home Assistant through MQTT discovery (roles/home_assistant): the monitoring host
    publishes curated per-host and per-GPU sensors to this broker (Home Assistant's)."""

    broker: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.:-]+$")  # host name or address
    port: int = Field(1883, ge=1, le=65535)
    tls: bool = False
    ca_file: str | None = None  # PEM on the deploying machine (tls with a private CA)
    user: str | None = Field(None, min_length=1)
    password: SecretRef | None = None
    discovery_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    interval_s: int = Field(30, ge=5, le=3600)


class AlertNotify(Strict):
    """Alertmanager's timers for the notices it sends: ``group_wait_s`` after the first alert of
    a group (alerts of one name and host), ``group_interval_s`` between two notices about one
    group (a resolved notice waits for it), ``repeat_interval_s`` before a still-firing alert
    is sent again."""

    group_wait_s: int = Field(30, ge=0, le=3600)
    group_interval_s: int = Field(120, ge=1, le=86400)
    repeat_interval_s: int = Field(4 * 3600, ge=60, le=30 * 86400)


class Monitoring(Strict):
    """The optional monitoring host: Prometheus + Alertmanager over the overlay (roles/monitoring).
    ``receivers``: the first gets every alert; the others get them while delivery fails;
    ``notify``: when Alertmanager sends."""

    host: str
    receivers: list[AlertReceiver] = []
    prometheus_port: int = Field(9090, ge=1, le=65535)
    alertmanager_port: int = Field(9093, ge=1, le=65535)
    scrape_interval_s: int = Field(15, ge=5, le=300)
    retention_days: int = Field(15, ge=1, le=3650)
    notify: AlertNotify = AlertNotify()
    home_assistant: HomeAssistant | None = None


class Gpu(Strict):
    model: str
    vram_gb: float = Field(gt=0)
    reserved_gb: float = Field(0.0, ge=0)
    unified_memory: bool = False
    vendor: Literal["nvidia", "amd", "intel"] = "nvidia"
    power_limit_w: int | None = Field(None, gt=0, le=2000)  # NVIDIA: nvidia-smi -pl at boot
    dedicated: bool = False  # a single-purpose card (seed 002): exactly one served model on it

    @property
    def usable_gb(self) -> float:
        return self.vram_gb - self.reserved_gb


class Serve(Strict):
    name: str = Field(min_length=1)
    engine: Engine
    model: str = Field(min_length=1)
    arch: str | None = None
    # None: what the model name says (an Ollama tag's quant, an -AWQ repository), else the
    # engine's default for that model (Ollama's library quant, 16-bit for vLLM).
    quant: Annotated[str | None, BeforeValidator(_lower)] = None
    context: int = Field(4096, gt=0)
    kv_cache_dtype: KvCacheDtype = "auto"
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    slots: int = Field(1, ge=1)
    vision: bool = False
    routes: list[RouteName] = []
    port: int | None = Field(None, ge=1, le=65535)
    base_url: str | None = None
    gpu: int = Field(0, ge=0)
    keep_alive: KeepAlive | None = None
    max_loaded_models: int | None = Field(None, ge=1)
    flags: dict[str, str | int | float | bool | list[Any] | dict[str, Any]] = {}
    env: dict[str, str] = {}
    start_order: int | None = Field(None, ge=0)  # vLLM: lower starts first (default: list order)
    ready_timeout_s: float | None = Field(None, gt=0)  # vLLM: /health + /v1/models within this
    timeouts: UpstreamTimeouts = UpstreamTimeouts()  # the gateway's toward this serve

    @property
    def listen_port(self) -> int:
        """The port the engine listens on (the engine's default unless set)."""
        if self.port is not None:
            return self.port
        return DEFAULT_PORTS.get(self.engine, 8000)


class Sleep(Strict):
    sleeps: bool = False
    wake: Literal["wol"] = "wol"
    idle_minutes: int = Field(20, ge=1)
    ready_timeout_s: float = Field(120, gt=0)
    keep_warm_minutes: int = Field(30, ge=0)
    # requests the gateway holds for one wake of this host (one magic packet); held ones are
    # then served in arrival order, whatever the route's queue.max; more: 503 at once
    max_held_requests: int = Field(64, ge=1, le=4096)
    # the gateway's connect timeout to this host: an awake box answers a SYN in
    # milliseconds, one that suspended since the last probe never does; past this the
    # request takes it as asleep and wakes it (default 1.5 s covers one lost SYN)
    connect_s: float = Field(1.5, gt=0, le=60)


class Nic(Strict):
    """The network adapter that wakes a Windows box: by MAC (default: the host's
    ``mac``) or by adapter name. ``kind: wifi`` is refused by validation."""

    name: str | None = Field(None, min_length=1)
    mac: MacAddress | None = None
    kind: Literal["wired", "wifi"] = "wired"


class Windows(Strict):
    """What the windows role sets on an ``os: windows`` host."""

    nic: Nic = Nic()
    reach: Literal["overlay", "ssh_tunnel"] = "overlay"
    # reach ssh_tunnel: serve port on the box -> port on the gateway host's loopback
    # (default: serve port + 20000; docs/windows.md)
    tunnel_ports: dict[Annotated[int, Field(ge=1, le=65535)], Annotated[int, Field(ge=1, le=65535)]] = {}
    hibernate: bool = False
    wake_timers: Literal["disable", "enable", "important"] = "disable"


HostRole = Literal["k3s_server", "k3s_agent", "gateway"]


class LabMachine(Strict):
    """How `hearth lab` builds this host (ignored by deploys): a container or a QEMU VM.

    The architecture is the host's own ``arch``; an arm64 host is an emulated container.
    """

    kind: Literal["container", "vm"] = "container"
    memory_mb: int = Field(1024, ge=256, le=16384)
    cpus: int = Field(2, ge=1, le=8)


class Host(Strict):
    address: str = Field(min_length=1)
    # required, except on a managed: false host reached on the LAN (validate.check_unmanaged)
    overlay_ip: IPv4Address | None = None
    arch: Literal["amd64", "arm64"] = "amd64"
    os: Literal["linux", "windows"] = "linux"
    mac: MacAddress | None = None
    roles: list[HostRole] = []
    gpus: list[Gpu] = []
    serves: list[Serve] = []
    sleep: Sleep = Sleep()
    windows: Windows | None = None
    lab: LabMachine = LabMachine()
    ssh_user: str | None = None
    ssh_port: int | None = Field(None, ge=1, le=65535)
    allow_reboot: bool = False  # may a deploy reboot this host (e.g. for a new driver)? one at a time
    k3s: HostK3s = HostK3s()
    # false: hearth never connects (a system it cannot configure, e.g. a postmarketOS
    # phone): no role runs there; the gateway still routes to its serves.
    managed: bool = True
    # managed: false hosts whose WireGuard you set up by hand join the overlay with this key.
    wireguard_public_key: str | None = Field(None, pattern=r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$")
    # managed: false: where the gateway reaches its serves, on its LAN address or its
    # overlay_ip (default: overlay with a wireguard_public_key, else lan; hearth.configs.unmanaged)
    reach: Literal["lan", "overlay"] | None = None
    settings: dict[str, Any] = {}
    timeouts: UpstreamTimeouts = UpstreamTimeouts()  # the gateway's toward each serve here

    @property
    def engines(self) -> set[str]:
        return {serve.engine for serve in self.serves}

    @property
    def in_k3s(self) -> bool:
        """Whether the inventory makes this host a k3s server or agent."""
        return bool({"k3s_server", "k3s_agent"} & set(self.roles))


class ArchSpec(Strict):
    """Architecture numbers for a model the built-in catalogue does not know."""

    params_b: float = Field(gt=0)
    layers: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    embed_params_b: float = Field(0.0, ge=0)
    vision_params_b: float = Field(0.0, ge=0)
    sliding_window: int | None = Field(None, gt=0)
    sliding_window_layers: int = Field(0, ge=0)
    kind: Literal["decoder", "encoder"] = "decoder"
    source: str = "inventory"


class Bucket(Strict):
    route: RouteName
    keywords: Annotated[dict[str, float], BeforeValidator(_keyword_weights)] = {}


class SizePromotion(Strict):
    thresholds: list[int] = Field(min_length=1)
    promote: dict[str, list[RouteName]] = {}


class Queue(Strict):
    max: int = Field(8, ge=1)
    timeout_s: float = Field(30, gt=0)


class RoutePolicy(Strict):
    on_busy: Literal["spill", "queue", "busy"] = "queue"
    spill: list[str] = []
    failover: list[str] = []
    terminal: bool = False
    wake: Literal["hold", "spill", "confirm"] = "hold"  # every upstream asleep: hold, spill or confirm
    queue: Queue = Queue()
    cloud_fallback: str | None = None  # "<provider>/<alias>": last resort after every local upstream
    private: bool = False  # nothing of this route ever goes to a cloud model
    cloud_no_retention: bool = False  # its cloud fallback must be an alias that retains nothing


class Routing(Strict):
    alias_prefix: str = Field("hearth", pattern=ROUTE_NAME)
    default_route: RouteName
    image_route: RouteName | None = None
    embedding_route: RouteName | None = None
    tie_break: list[str] = []
    buckets: dict[str, Bucket] = {}
    size_promotion: SizePromotion | None = None
    routes: dict[RouteName, RoutePolicy] = {}


class CloudModel(Strict):
    """One cloud alias: the provider's model id, limits, data policy, price (USD per 1M tokens)."""

    id: str = Field(min_length=1)
    per_minute: int | None = Field(None, ge=1)
    per_day: int | None = Field(None, ge=1)
    retains_prompts: bool | None = None  # None: unknown, treated as "retains"
    trains_on_prompts: bool | None = None
    vision: bool = False
    context: int | None = Field(None, gt=0)
    usd_per_mtok_in: float | None = Field(None, ge=0)
    usd_per_mtok_out: float | None = Field(None, ge=0)


def _cloud_model(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


def _client_cloud(value: Any) -> Any:
    if isinstance(value, bool):  # the old switch: true = escalation with the header
        return {"mode": "escalation" if value else "none"}
    return value


class Cloud(Strict):
    base_url: str = Field(pattern=r"^https?://")
    api_key: SecretRef
    models: dict[str, Annotated[CloudModel, BeforeValidator(_cloud_model)]] = Field(min_length=1)


class ClientCloud(Strict):
    """How a client may reach cloud models: none (default), escalation (header), by_name."""

    mode: Literal["none", "escalation", "by_name"] = "none"
    fallback: bool = False
    providers: list[str] | None = None
    aliases: list[str] | None = None  # "<provider>/<alias>"
    no_retention: bool = False


class Budget(Strict):
    tokens_per_day: int | None = Field(None, ge=1)
    usd_per_day: float | None = Field(None, gt=0)


class Client(Strict):
    key: SecretRef
    routes: list[str] | None = None
    rate_per_minute: int | None = Field(None, ge=1)
    cloud: Annotated[ClientCloud, BeforeValidator(_client_cloud)] = ClientCloud()
    budget: Budget = Budget()


HostName = Annotated[str, Field(pattern=NAME)]


class Inventory(Strict):
    name: str = Field(pattern=NAME)
    lan: Lan
    overlay: Overlay
    ssh: Ssh = Ssh()
    k3s: K3s | None = None
    gateway: Gateway | None = None
    monitoring: Monitoring | None = None
    hosts: dict[HostName, Host] = Field(min_length=1)
    models: dict[str, ArchSpec] = {}
    routing: Routing | None = None
    clouds: dict[str, Cloud] = {}
    clients: dict[str, Client] = {}
    settings: dict[str, Any] = {}
    # names clients use -> "<alias_prefix>/<route>", "<alias_prefix>/auto" or a served name
    model_aliases: dict[str, str] = {}
    client_devices: ClientDevices | None = None  # devices on the overlay (hearth client add)

    def hosts_with_role(self, role: str) -> list[str]:
        return [name for name, host in self.hosts.items() if role in host.roles]

    def linux_hosts(self) -> list[str]:
        """Linux hosts hearth manages (a managed: false box is routed to, never deployed)."""
        return [name for name, host in self.hosts.items() if host.os == "linux" and host.managed]

    def windows_hosts(self) -> list[str]:
        return [name for name, host in self.hosts.items() if host.os == "windows"]

    def serves(self) -> list[tuple[str, Serve]]:
        """Every served model in the lab, with the name of the host serving it."""
        return [(name, serve) for name, host in self.hosts.items() for serve in host.serves]

    def route_upstreams(self) -> dict[str, list[tuple[str, Serve]]]:
        """Route name -> the (host, serve) pairs that serve it."""
        table: dict[str, list[tuple[str, Serve]]] = {}
        for host, serve in self.serves():
            for route in serve.routes:
                table.setdefault(route, []).append((host, serve))
        return table
