"""Checks that span the inventory: what a per-field schema cannot see.

Each check yields ``Problem(path, message)``; the loader prefixes the file name and
line. Nothing here touches a host.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hearth.inventory import k3s_checks
from hearth.inventory.model import Inventory, RoutePolicy, Serve, Windows
from hearth.inventory.secrets import SECRET_REF
from hearth.inventory.validate_monitoring import check_monitoring
from hearth.inventory.validate_reach import check_reach
from hearth.inventory.validate_tunnel import check_tunnels
from hearth.inventory.validate_vllm import check_dedicated_gpus, check_vllm

SECRET_KEY = re.compile(r"(token|secret|password|passwd|api[_-]?key|private[_-]?key)", re.I)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


Check = Callable[[Inventory], Iterator[Problem]]


def check_unique_addresses(inv: Inventory) -> Iterator[Problem]:
    """Addresses, overlay IPs and MACs are each unique; overlay IPs sit in the overlay."""
    for attribute in ("address", "overlay_ip", "mac"):
        seen: dict[str, str] = {}
        for name, host in inv.hosts.items():
            value = getattr(host, attribute)
            if value is None:
                continue
            if str(value) in seen:
                yield Problem(
                    f"hosts.{name}.{attribute}",
                    f"{value} is already used by host {seen[str(value)]}",
                )
            seen[str(value)] = name
    gateway_ip = inv.overlay.cidr.network_address
    for name, host in inv.hosts.items():
        if host.overlay_ip is None:  # a managed: false host reached on the LAN (validate_unmanaged)
            continue
        if host.overlay_ip not in inv.overlay.cidr:
            yield Problem(f"hosts.{name}.overlay_ip", f"{host.overlay_ip} is outside {inv.overlay.cidr}")
        elif host.overlay_ip in (gateway_ip, inv.overlay.cidr.broadcast_address):
            yield Problem(f"hosts.{name}.overlay_ip", f"{host.overlay_ip} is not a usable host address")


def check_sleepers(inv: Inventory) -> Iterator[Problem]:
    """A host that sleeps must be wakeable: Wake-on-LAN needs its MAC."""
    for name, host in inv.hosts.items():
        if host.sleep.sleeps and host.mac is None:
            yield Problem(f"hosts.{name}.mac", "this host sleeps (sleep.sleeps) but has no MAC to wake it with")


def check_windows(inv: Inventory) -> Iterator[Problem]:
    """The windows section is for Windows hosts; the NIC that wakes one is wired and
    carries the MAC the gateway sends the magic packet to (seed 000: a Wi-Fi NIC
    ate the packets)."""
    for name, host in inv.hosts.items():
        path = f"hosts.{name}.windows"
        if host.windows is not None and host.os != "windows":
            yield Problem(path, f"a windows section on an os: {host.os} host")
            continue
        if host.os != "windows":
            continue
        nic = (host.windows or Windows()).nic
        if nic.kind == "wifi":
            yield Problem(f"{path}.nic.kind", "Wake-on-LAN needs a wired NIC: a sleeping Wi-Fi adapter is off "
                          "the network and never hears the magic packet; name the wired NIC")
        if nic.mac and host.mac and nic.mac != host.mac:
            yield Problem(f"{path}.nic.mac", f"the gateway wakes this host at {host.mac} (hosts.{name}.mac); "
                          "the NIC that wakes it must have that MAC")
        if host.sleep.sleeps and not (nic.mac or host.mac or nic.name):
            yield Problem(f"{path}.nic", "this host sleeps: name its wired NIC (name or mac) for Wake-on-LAN")
        if host.windows and host.windows.reach == "ssh_tunnel" and inv.gateway is None:
            yield Problem(f"{path}.reach", "reach ssh_tunnel needs the gateway section (the tunnel starts there)")


# Engines that serve from a GPU only (no CPU fallback): an arm64 worker without a GPU
# (a Pi, a phone) must not get one.
GPU_ONLY_ENGINES = {"vllm"}


def check_arm64(inv: Inventory) -> Iterator[Problem]:
    """What must not run on an arm64 host is refused here, never skipped at deploy time.

    * the NVIDIA driver role installs amd64 drivers for discrete GPUs: an arm64 NVIDIA
      box is a unified-memory system (DGX Spark, Jetson) whose OS brings its driver;
    * a GPU-only engine on an arm64 host without a GPU;
    * a lab VM (lab VMs are amd64; an arm64 lab machine is an emulated container).
    """
    for name, host in inv.hosts.items():
        if host.arch != "arm64":
            continue
        for i, gpu in enumerate(host.gpus):
            if gpu.vendor == "nvidia" and not gpu.unified_memory:
                yield Problem(f"hosts.{name}.gpus[{i}]", "arch arm64: the NVIDIA role installs drivers for "
                              "amd64 hosts only (an arm64 NVIDIA box is unified-memory, e.g. DGX Spark: "
                              "set unified_memory: true), or set arch: amd64")
        for i, serve in enumerate(host.serves):
            if serve.engine in GPU_ONLY_ENGINES and not host.gpus:
                yield Problem(f"hosts.{name}.serves[{i}].engine", f"arch arm64 worker without a GPU: "
                              f"{serve.engine} serves from a GPU only (use engine ollama)")
        if host.lab.kind == "vm":
            yield Problem(f"hosts.{name}.lab.kind", "arch arm64: lab VMs are amd64 only; an arm64 lab "
                          "machine is an emulated container (lab.kind: container)")


def check_roles(inv: Inventory) -> Iterator[Problem]:
    """k3s and gateway settings agree with the hosts' roles; Windows stays out of k3s."""
    for name, host in inv.hosts.items():
        if host.os == "windows":
            for role in host.roles:
                yield Problem(f"hosts.{name}.roles", f"role {role} needs Linux; this host is windows")
        if "k3s_server" in host.roles and "k3s_agent" in host.roles:
            yield Problem(f"hosts.{name}.roles", "a host is k3s_server or k3s_agent, not both")
    k3s_hosts = inv.hosts_with_role("k3s_server") + inv.hosts_with_role("k3s_agent")
    if inv.k3s is None and k3s_hosts:
        yield Problem("k3s", f"hosts {', '.join(k3s_hosts)} have k3s roles but there is no k3s section")
    # k3s.server (the first server) and the server count: check_k3s
    gateways = inv.hosts_with_role("gateway")
    if inv.gateway is None and gateways:
        yield Problem("gateway", f"host {gateways[0]} has the gateway role but there is no gateway section")
    if inv.gateway is not None:
        yield from _one_host_with_role(inv, "gateway.host", inv.gateway.host, "gateway")
    if inv.overlay.topology == "hub":
        hub = inv.overlay.hub
        if hub is None or hub not in inv.hosts:
            yield Problem("overlay.hub", "topology hub needs hub: the name of a host in hosts")


def check_unmanaged(inv: Inventory) -> Iterator[Problem]:
    """Hosts hearth never connects to (``managed: false``) cannot carry what hearth deploys."""
    for name, host in inv.hosts.items():
        if host.managed:
            if host.wireguard_public_key is not None:
                yield Problem(f"hosts.{name}.wireguard_public_key",
                              "hearth makes the key pair on hosts it manages; only a managed: false host gives its key")
            continue
        if "gateway" in host.roles:
            yield Problem(f"hosts.{name}.roles", "the gateway role is deployed by hearth; this host is managed: false")
        if inv.overlay.topology == "hub" and inv.overlay.hub == name:
            yield Problem("overlay.hub", f"the hub {name} is managed: false; hearth cannot configure its WireGuard")


def _one_host_with_role(inv: Inventory, path: str, name: str, role: str) -> Iterator[Problem]:
    if name not in inv.hosts:
        yield Problem(path, f"no host named {name}")
        return
    if role not in inv.hosts[name].roles:
        yield Problem(path, f"host {name} does not have the {role} role")
    for other in inv.hosts_with_role(role):
        if other != name:
            yield Problem(f"hosts.{other}.roles", f"{role} is {name} (see {path}); only one host has it")


def check_serves(inv: Inventory) -> Iterator[Problem]:
    """Engine-specific settings only where the engine reads them; ports don't collide."""
    for name, host in inv.hosts.items():
        ports: dict[int, str] = {}
        for i, serve in enumerate(host.serves):
            path = f"hosts.{name}.serves[{i}]"
            if serve.keep_alive is not None and serve.engine != "ollama":
                yield Problem(f"{path}.keep_alive", f"keep_alive is an Ollama setting; engine is {serve.engine}")
            if serve.flags and serve.engine != "vllm":
                yield Problem(f"{path}.flags", f"flags are vLLM command-line flags; engine is {serve.engine}")
            if serve.engine == "openai" and serve.base_url is None:
                yield Problem(f"{path}.base_url", "engine openai needs the endpoint's base_url")
            port = serve.listen_port
            if port in ports and serve.engine != "ollama":
                yield Problem(f"{path}.port", f"port {port} is already used by {ports[port]}")
            ports.setdefault(port, serve.name)
            for key in ("start_order", "ready_timeout_s"):
                if getattr(serve, key) is not None and serve.engine != "vllm":
                    yield Problem(f"{path}.{key}", f"{key} orders vLLM units; engine is {serve.engine}")


def check_ollama_server(inv: Inventory) -> Iterator[Problem]:
    """One Ollama server per host: its server-wide settings are shared by its models."""
    for name, host in inv.hosts.items():
        serves = [(i, s) for i, s in enumerate(host.serves) if s.engine == "ollama"]
        for key in ("listen_port", "max_loaded_models"):  # keep_alive: per model, via the gateway
            first_index, first = serves[0] if serves else (0, None)
            for i, serve in serves[1:]:
                if getattr(serve, key) != getattr(first, key):
                    field = "port" if key == "listen_port" else key
                    yield Problem(
                        f"hosts.{name}.serves[{i}].{field}",
                        f"one Ollama server serves this host's models; {field} must match serves[{first_index}]",
                    )
        yield from _check_ollama_kv(name, serves)
        warm = [(i, s) for i, s in serves if s.keep_alive is not None and s.keep_alive.strip().startswith("-")]
        from hearth.planner.ollama_server import max_loaded_models

        cap = max_loaded_models(host)  # as the deploy writes it: Ollama's rule when unset
        if warm and len(warm) > cap:
            i, serve = warm[cap]
            yield Problem(
                f"hosts.{name}.serves[{i}].keep_alive",
                f"{len(warm)} models are to stay loaded for good (keep_alive {serve.keep_alive}) "
                f"but max_loaded_models is {cap}: they would push each other out",
            )


def _check_ollama_kv(name: str, serves: list[tuple[int, Serve]]) -> Iterator[Problem]:
    """OLLAMA_KV_CACHE_TYPE is one of Ollama's three, and server-wide: one value per host."""
    from hearth.configs.ollama import OLLAMA_KV_CACHE_SOURCE, OLLAMA_KV_CACHE_TYPES

    first: tuple[int, Serve] | None = None
    for i, serve in serves:
        path, kv = f"hosts.{name}.serves[{i}].kv_cache_dtype", serve.kv_cache_dtype
        if kv != "auto" and kv not in OLLAMA_KV_CACHE_TYPES:
            yield Problem(path, f"{kv} is not a KV-cache type of Ollama: OLLAMA_KV_CACHE_TYPE takes f16, q8_0 "
                          f"or q4_0 (write auto, fp16/f16, q8_0 or q4_0; {OLLAMA_KV_CACHE_SOURCE}); serve {serve.name}")
        elif kv != "auto" and first and OLLAMA_KV_CACHE_TYPES[kv] != OLLAMA_KV_CACHE_TYPES[first[1].kv_cache_dtype]:
            yield Problem(path, f"{kv}, but serves[{first[0]}] ({first[1].name}) has {first[1].kv_cache_dtype}: "
                          "OLLAMA_KV_CACHE_TYPE is one setting for the host's Ollama server; give them one value")
        elif kv != "auto":
            first = first or (i, serve)


def check_vram(inv: Inventory) -> Iterator[Problem]:
    """Every served model's architecture is known and everything fits its GPU."""
    from hearth.planner.vram import plan_host  # the planner imports the inventory model

    for name, host in inv.hosts.items():
        plans, problems = plan_host(name, host, inv.models)
        for index, message in problems:
            yield Problem(f"hosts.{name}.serves[{index}]", message)
        for plan in plans:
            for model in plan.models:
                index = next(i for i, s in enumerate(host.serves) if s.name == model.serve)
                for message in model.problems:
                    yield Problem(f"hosts.{name}.serves[{index}]", f"{model.serve} does not fit: {message}")
            for model in plan.ollama_models() if plan.takes_turns() else []:
                alone = sum(m.resident_gb for m in plan.models if m.engine != "ollama") + model.resident_gb
                if alone > plan.gpu.usable_gb:
                    index = next(i for i, s in enumerate(host.serves) if s.name == model.serve)
                    yield Problem(f"hosts.{name}.serves[{index}]",
                                  f"{model.serve} does not fit {plan.gpu.model} even loaded alone: "
                                  f"{alone:.1f} GiB of {plan.gpu.usable_gb:.1f} usable")
            if plan.headroom_gb < 0:
                together = "loaded together at most" if plan.takes_turns() else "loaded together"
                names = " + ".join(f"{m.serve} {m.resident_gb:.1f}" for m in plan.resident_set())
                yield Problem(
                    f"hosts.{name}.gpus[{plan.index}]",
                    f"models do not fit {plan.gpu.model} ({together}): {names} = {plan.used_gb:.1f} GiB, "
                    f"usable {plan.gpu.usable_gb:.1f} GiB ({plan.gpu.vram_gb:g} - "
                    f"{plan.gpu.reserved_gb:g} reserved): {-plan.headroom_gb:.1f} GiB over",
                )


def _is_embedding_model(inv: Inventory, serve: Serve) -> bool:
    from hearth.planner.catalogue import find_arch  # the planner imports the inventory model

    found = find_arch(serve.arch, serve.model, inv.models)
    return found is not None and found[1].kind == "encoder"


def check_routing(inv: Inventory) -> Iterator[Problem]:
    """Routes have upstreams, chains are local and loop-free, vision lands on sight."""
    routing = inv.routing
    upstreams = inv.route_upstreams()
    if routing is None:
        if upstreams:
            yield Problem("routing", "hosts serve routes but there is no routing section")
        return
    for route, serving in upstreams.items():
        if len(serving) > 1:
            hosts = ", ".join(f"{h}/{s.name}" for h, s in serving)
            yield Problem("routing.routes", f"route {route} is served by {hosts}; give each route one upstream")
    known = set(upstreams)
    cloud_models = {f"cloud/{p}/{m}" for p, c in inv.clouds.items() for m in c.models}
    cloud_names = {m for c in inv.clouds.values() for m in c.models} | set(inv.clouds)

    def route_ref(path: str, route: str) -> Iterator[Problem]:
        if route not in known:
            yield Problem(path, f"route {route} has no upstream (no host serves it)")

    yield from route_ref("routing.default_route", routing.default_route)
    if routing.image_route is not None:
        yield from route_ref("routing.image_route", routing.image_route)
        for host, serve in upstreams.get(routing.image_route, []):
            if not serve.vision:
                yield Problem(
                    "routing.image_route",
                    f"route {routing.image_route} is served by {host}/{serve.name}, which cannot see images",
                )
    if routing.embedding_route is not None:
        yield from route_ref("routing.embedding_route", routing.embedding_route)
        for host, serve in upstreams.get(routing.embedding_route, []):
            if not _is_embedding_model(inv, serve):
                yield Problem(
                    "routing.embedding_route",
                    f"route {routing.embedding_route} is served by {host}/{serve.name}, "
                    "which is not an embedding model (the catalogue or models: says kind: encoder)",
                )
    for route in routing.routes:
        yield from route_ref(f"routing.routes.{route}", route)
    for bucket, spec in routing.buckets.items():
        yield from route_ref(f"routing.buckets.{bucket}.route", spec.route)
        if bucket == "vision" or bucket == routing.image_route:
            for host, serve in upstreams.get(spec.route, []):
                if not serve.vision:
                    yield Problem(
                        f"routing.buckets.{bucket}.route",
                        f"the vision bucket routes to {host}/{serve.name}, which cannot see images",
                    )
    yield from _check_tie_break(routing.tie_break, set(routing.buckets))
    if routing.size_promotion is not None:
        yield from _check_promotion(inv, known)
    for route, policy in routing.routes.items():
        yield from _check_chains(f"routing.routes.{route}", route, policy, known, cloud_models, cloud_names)
    yield from _check_failover_cycles(routing.routes)
    yield from _check_wake_choices(inv, routing.routes)
    for client, spec in inv.clients.items():
        for route in spec.routes or []:
            yield from route_ref(f"clients.{client}.routes", route)


def _check_wake_choices(inv: Inventory, routes: dict[str, RoutePolicy]) -> Iterator[Problem]:
    """``wake: spill`` needs a fallback to answer from and is no terminal route's;
    ``spill`` and ``confirm`` only mean something for a route whose upstream sleeps."""
    serving = inv.route_upstreams()
    for route, policy in routes.items():
        where = f"routing.routes.{route}.wake"
        if policy.wake == "hold":
            continue
        if policy.wake == "spill" and policy.terminal:
            yield Problem(where, "a terminal route never falls back: it cannot spill while its box wakes")
        elif policy.wake == "spill" and not (policy.spill or policy.failover):
            yield Problem(where, "spill answers from an awake fallback while the box wakes: "
                                 "give the route spill: or failover: routes")
        if not any(inv.hosts[h].sleep.sleeps for h, _ in serving.get(route, [])):
            yield Problem(where, f"{policy.wake}: no upstream of route {route} sleeps (sleep.sleeps): "
                                 "there is never a wake to choose about")


def check_cloud(inv: Inventory) -> Iterator[Problem]:
    """Cloud fallbacks and client cloud lists name aliases that exist; never a terminal
    or private route (seed 002: nothing private leaves, the senior model never falls back)."""
    aliases = {f"{p}/{a}": m for p, c in inv.clouds.items() for a, m in c.models.items()}
    for route, policy in (inv.routing.routes if inv.routing else {}).items():
        ref, where = policy.cloud_fallback, f"routing.routes.{route}.cloud_fallback"
        if ref is None:
            continue
        if ref not in aliases:
            yield Problem(where, f"unknown cloud alias {ref} (want <provider>/<alias> from clouds:)")
            continue
        if policy.terminal:
            yield Problem(where, "a terminal route never falls back, not even to the cloud")
        if policy.private:
            yield Problem(where, "a private route never sends anything to the cloud")
        m = aliases[ref]
        if policy.cloud_no_retention and not (m.retains_prompts is False and m.trains_on_prompts is not True):
            yield Problem(where, f"{ref} may retain or train on prompts (the route has cloud_no_retention)")
    for client, spec in inv.clients.items():
        for p in spec.cloud.providers or []:
            if p not in inv.clouds:
                yield Problem(f"clients.{client}.cloud.providers", f"unknown cloud provider {p}")
        for ref in spec.cloud.aliases or []:
            if ref not in aliases:
                yield Problem(f"clients.{client}.cloud.aliases", f"unknown cloud alias {ref} (want <provider>/<alias>)")


def _check_tie_break(order: list[str], buckets: set[str]) -> Iterator[Problem]:
    for bucket in order:
        if bucket not in buckets:
            yield Problem("routing.tie_break", f"unknown bucket {bucket}")
    if len(set(order)) != len(order):
        yield Problem("routing.tie_break", "a bucket is listed twice")
    missing = sorted(buckets - set(order))
    if order and missing:
        yield Problem("routing.tie_break", f"buckets missing from the order: {', '.join(missing)}")


def _check_promotion(inv: Inventory, known: set[str]) -> Iterator[Problem]:
    assert inv.routing is not None and inv.routing.size_promotion is not None
    promotion = inv.routing.size_promotion
    if promotion.thresholds != sorted(set(promotion.thresholds)):
        yield Problem("routing.size_promotion.thresholds", "thresholds must be strictly increasing")
    for bucket, routes in promotion.promote.items():
        path = f"routing.size_promotion.promote.{bucket}"
        if bucket not in inv.routing.buckets:
            yield Problem(path, f"unknown bucket {bucket}")
        if len(routes) != len(promotion.thresholds) + 1:
            yield Problem(path, f"needs {len(promotion.thresholds) + 1} routes (one per size band), has {len(routes)}")
        for route in routes:
            if route not in known:
                yield Problem(path, f"route {route} has no upstream (no host serves it)")


def _check_chains(
    path: str, route: str, policy: RoutePolicy, known: set[str],
    cloud_models: set[str], cloud_names: set[str],
) -> Iterator[Problem]:
    if policy.terminal and (policy.spill or policy.failover):
        yield Problem(path, "a terminal route never falls back: remove spill and failover")
    if policy.terminal and policy.on_busy == "spill":
        yield Problem(f"{path}.on_busy", "a terminal route never spills: use queue or busy")
    if policy.on_busy == "spill" and not policy.spill:
        yield Problem(f"{path}.spill", "on_busy is spill but the spill chain is empty")
    for chain in ("spill", "failover"):
        entries: list[str] = getattr(policy, chain)
        for entry in entries:
            where = f"{path}.{chain}"
            if entry in cloud_models or entry.startswith("cloud/") or entry in cloud_names:
                yield Problem(where, f"{entry} is a cloud model; clouds are reached only when asked, never by fallback")
            elif entry == route:
                yield Problem(where, f"the chain loops back to {route} itself")
            elif entry not in known:
                yield Problem(where, f"route {entry} has no upstream (no host serves it)")
        if len(set(entries)) != len(entries):
            yield Problem(f"{path}.{chain}", "the chain loops: a route is listed twice")


def _check_failover_cycles(routes: dict[str, RoutePolicy]) -> Iterator[Problem]:
    """Failover is followed transitively (a -> b, then b's own chain): refuse cycles."""
    reported: set[frozenset[str]] = set()

    def walk(route: str, path: list[str]) -> Iterator[list[str]]:
        for target in routes.get(route, RoutePolicy()).failover:
            if target == path[0] and len(path) > 1:
                yield [*path, target]
            elif target not in path:
                yield from walk(target, [*path, target])

    for start in routes:
        for cycle in walk(start, [start]):
            members = frozenset(cycle)
            if members not in reported:
                reported.add(members)
                yield Problem(f"routing.routes.{start}.failover", f"failover chains loop: {' -> '.join(cycle)}")


def check_nvidia(inv: Inventory) -> Iterator[Problem]:
    """Power limits only on NVIDIA GPUs; the driver branch looks like one."""
    for name, host in inv.hosts.items():
        for i, gpu in enumerate(host.gpus):
            if gpu.power_limit_w is not None and (gpu.vendor != "nvidia" or host.os != "linux"):
                yield Problem(f"hosts.{name}.gpus[{i}].power_limit_w",
                              "power limits are set with nvidia-smi: NVIDIA GPUs on Linux hosts only")
    places = [("settings", inv.settings)] + [(f"hosts.{n}.settings", h.settings) for n, h in inv.hosts.items()]
    for path, mapping in places:
        value = mapping.get("nvidia_driver_branch")
        if value is not None and not re.fullmatch(r"\d{3,4}", str(value)):
            yield Problem(f"{path}.nvidia_driver_branch", f"{value!r} is not a driver branch such as '535' or '570'")


def check_k3s(inv: Inventory) -> Iterator[Problem]:
    """k3s: first server, server count, flannel vs the overlay, GPU nodes, config keys of the pinned release."""
    for path, message in k3s_checks.check_cluster(inv):
        yield Problem(path, message)


def check_plain_secrets(inv: Inventory) -> Iterator[Problem]:
    """Free-form settings and env never carry a secret in plain text."""
    def scan(path: str, mapping: dict[str, Any]) -> Iterator[Problem]:
        for key, value in mapping.items():
            if SECRET_KEY.search(key) and isinstance(value, str) and not SECRET_REF.match(value):
                yield Problem(f"{path}.{key}", "looks like a secret written in plain text; write env:NAME or file:PATH")

    yield from scan("settings", inv.settings)
    for name, host in inv.hosts.items():
        yield from scan(f"hosts.{name}.settings", host.settings)
        for i, serve in enumerate(host.serves):
            yield from scan(f"hosts.{name}.serves[{i}].env", serve.env)


def check_settings(inv: Inventory, defaults: dict[str, Any]) -> Iterator[Problem]:
    """Settings override group_data defaults: a key must exist there."""
    if not defaults:
        return
    places = [("settings", inv.settings)] + [(f"hosts.{n}.settings", h.settings) for n, h in inv.hosts.items()]
    for path, mapping in places:
        for key in mapping:
            if key not in defaults:
                yield Problem(f"{path}.{key}", "unknown setting (not a default in group_data/)")


CHECKS: tuple[Check, ...] = (
    check_unique_addresses,
    check_sleepers,
    check_windows,
    check_roles,
    check_unmanaged,
    check_serves,
    check_ollama_server,
    check_vram,
    check_routing,
    check_nvidia,
    check_k3s,
    check_plain_secrets,
    check_cloud,
    check_arm64,
)


def cross_checks(inv: Inventory, defaults: dict[str, Any] | None = None) -> list[Problem]:
    """Run every check; an empty list means the inventory is valid."""
    from hearth.inventory.validate_unmanaged import check_overlay_ips, check_unmanaged_reach

    if missing := [Problem(path, message) for path, message in check_overlay_ips(inv)]:
        return missing  # the other checks read every host's overlay address
    problems = [problem for check in CHECKS for problem in check(inv)]
    problems.extend(Problem(path, message) for path, message in check_unmanaged_reach(inv))
    problems.extend(check_settings(inv, defaults or {}))
    problems.extend(Problem(path, message) for path, message in check_vllm(inv, defaults or {}))
    problems.extend(Problem(path, message) for path, message in check_dedicated_gpus(inv))
    problems.extend(Problem(path, message) for path, message in check_reach(inv))
    problems.extend(Problem(path, message) for path, message in check_tunnels(inv))
    problems.extend(Problem(path, message) for path, message in check_monitoring(inv, defaults or {}))
    return problems

