"""`hearth bench wake`: the sleep loop of a sleeping box, and what the gateway adds to its
own wake-up time.

Needs the lab up and deployed (`hearth lab deploy`). Every timing is taken inside
another lab machine's network namespace (a client on the overlay, as Cursor would
be), so no SSH round trip is in the figures. First the idle leg
(``hearth/bench/wake_idle.py``): the box left idle suspends itself, the next request
wakes it. Then per round:

* ready  -- the box asleep, a magic packet sent directly; time until its upstream
            answers its cheap probe endpoint (the host's own ready time);
* warm   -- the box awake; one chat request through the gateway;
* wake   -- the box asleep and known asleep to the gateway; the same request
            through the gateway (which sends the magic packet and holds it);

added = wake - ready - warm (for the whole answer and for its first token).

The wake request itself is split into phases (wall clock of this one machine):
request -> magic packet (the lab's power controller starts the boot: boot.json) ->
sshd (the power controller's own boot-to-banner time) -> Ollama (the client's probe
of the box's engine over the overlay answers) -> first token through the gateway ->
whole answer. A last round sends several requests at once to the sleeping box and
counts the magic packets the lab's power controller received. Figures are p50 and
p99 (nearest rank: below 100 rounds the p99 is the slowest round).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hearth.bench.wake_idle import idle_leg, idle_lines
from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import gateway_config_from_inventory, upstream_name
from hearth.inventory import Inventory, load_inventory, resolve_secret
from hearth.lab import cycle, power_cli
from hearth.lab import machine as lab_machine
from hearth.lab.gateway_check import gateway_url
from hearth.lab.network import netns_name
from hearth.lab.sh import LabError
from hearth.lab.state import LabRecord, lab_root, load_record

# Runs inside the client machine's network namespace with this Python.
PROBE = r"""
import asyncio, json, sys, time
import aiohttp, wakeonlan

async def ready(url, mac, broadcast):
    t0 = time.perf_counter()
    wakeonlan.send_magic_packet(mac, ip_address=broadcast, port=9)
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                # a short timeout: a probe sent while the box boots is dropped, not refused
                async with s.get(url, timeout=aiohttp.ClientTimeout(total=0.05)) as r:
                    if r.status == 200:
                        return {"seconds": time.perf_counter() - t0}
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.005)

async def one(s, url, headers, body):
    # streamed: the first content chunk is the first token
    sent = time.time()
    first = None
    async with s.post(url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=180)) as r:
        async for line in r.content:
            if (first is None and line.startswith(b"data: {") and b'"content"' in line
                    and b'"content":""' not in line and b'"content": ""' not in line):
                first = time.time()
        return {"status": r.status, "seconds": time.time() - sent,
                "first_token_s": (first or time.time()) - sent, "sent_at": sent}

async def chat(url, key, body, count):
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as s:
        return await asyncio.gather(*(one(s, url, headers, body) for _ in range(count)))

async def sshd_up(address, port):
    while True:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(address, port), 0.2)
            try:
                if (await asyncio.wait_for(r.read(4), 2.0)).startswith(b"SSH-"):
                    return time.time()
            finally:
                w.close()
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.02)

async def engine_up(s, url):
    while True:
        try:
            async with s.get(url, timeout=aiohttp.ClientTimeout(total=0.05)) as r:
                if r.status == 200:
                    return time.time()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.01)

async def watch(probe_url, ssh_address, ssh_port, within_s):
    # from the gateway host: when the box's sshd and engine answer (the engine over the
    # gateway host's own WireGuard session, as the gateway reaches it)
    print("watching", flush=True)
    async with aiohttp.ClientSession() as s:
        out = {}
        for name, coro in (("sshd_at", sshd_up(ssh_address, ssh_port)), ("engine_at", engine_up(s, probe_url))):
            try:
                out[name] = await asyncio.wait_for(coro, within_s)
            except asyncio.TimeoutError:
                out[name] = None
        return out

mode, args = sys.argv[1], json.loads(sys.argv[2])
runs = {"ready": ready, "chat": chat, "watch": watch}
print(json.dumps(asyncio.run(runs[mode](**args))))
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench wake`."""
    p = subparsers.add_parser("wake", help="gateway overhead on top of a sleeping box's own wake-up (lab)")
    p.add_argument("--out", type=Path, help="write results here (JSON)")
    p.add_argument("--summarize", type=Path, help="re-print the figures of a recorded run (JSON) and stop")
    p.add_argument("--inventory", type=Path, default=cycle.REPO / "inventory" / "lab.yml")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrent", type=int, default=10, help="requests sent at once to the sleeping box")
    p.add_argument("--idle-minutes", type=int, default=1,
                   help="measure idle -> asleep with the box's idle_minutes set to this (0: skip that leg)")
    p.set_defaults(func=run)


def probe_argv(machine: str, mode: str, args: dict[str, Any]) -> list[str]:
    return ["ip", "netns", "exec", netns_name(machine), sys.executable, "-c", PROBE, mode, json.dumps(args)]


def in_client(lab: LabRecord, client: str, mode: str, args: dict[str, Any]) -> Any:
    argv = probe_argv(client, mode, args)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise LabError(f"probe in {client} failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout)


class WakeBench:
    """One lab, its sleeping box, a client machine and the gateway."""

    def __init__(self, inv: Inventory, lab: LabRecord) -> None:
        assert inv.gateway is not None
        self.inv, self.lab = inv, lab
        self.sleeper = next(n for n, h in inv.hosts.items() if h.sleep.sleeps)
        self.client = next(n for n, h in inv.hosts.items()
                           if h.os == "linux" and not h.sleep.sleeps and n != inv.gateway.host)
        box = inv.hosts[self.sleeper]
        serve = box.serves[0]
        self.upstream = upstream_name(self.sleeper, 0, len(box.serves))
        self.probe_url = f"http://{box.overlay_ip}:{serve.listen_port}/api/tags"
        gateway = str(gateway_url(inv)).removesuffix("/v1")
        self.chat_url = f"{gateway}/v1/chat/completions"
        self.admin_url = f"{gateway}/admin/upstreams"
        self.route = serve.routes[0]
        clients = list(inv.clients.values())
        self.key = resolve_secret(next((c for c in clients if c.routes is None), clients[0]).key)
        self.admin_token = resolve_secret(inv.gateway.admin_token)
        self.record = lab.machines[self.sleeper]
        # the box's own ready time is taken from the gateway host: the same WireGuard
        # session the gateway uses (a client's own session to the box would add its rekey)
        self.vantage = inv.gateway.host
        fake = itertools.count()  # the routes only: secrets stay unread (distinct values pass the key checks)
        cfg = gateway_config_from_inventory(inv, resolve=lambda _ref: f"unread-{next(fake)}")
        # how many requests the gateway holds for one wake (the inventory's
        # sleep.max_held_requests); each held one is answered once the box is up
        self.hold_bound = cfg.upstreams[self.upstream].sleep.max_waiters

    def body(self) -> dict[str, Any]:
        prefix = self.inv.routing.alias_prefix if self.inv.routing else "hearth"
        return {"model": f"{prefix}/{self.route}", "stream": True,
                "messages": [{"role": "user", "content": "wake up"}]}

    def chat(self, count: int = 1) -> list[dict[str, Any]]:
        return in_client(self.lab, self.client, "chat",
                         {"url": self.chat_url, "key": self.key, "body": self.body(), "count": count})

    def wake_request(self) -> dict[str, Any]:
        """The streamed request from the client; the box's sshd and engine watched from the gateway host."""
        box = self.inv.hosts[self.sleeper]
        watcher = subprocess.Popen(probe_argv(self.inv.gateway.host if self.inv.gateway else self.client, "watch", {
            "probe_url": self.probe_url, "ssh_address": str(box.address),
            "ssh_port": box.ssh_port or self.inv.ssh.port, "within_s": 120}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert watcher.stdout is not None
            if watcher.stdout.readline().strip() != "watching":
                raise LabError(f"the watcher did not start: {watcher.stderr.read()[-1500:] if watcher.stderr else ''}")
            (answer,) = self.chat(1)
            out, err = watcher.communicate(timeout=300)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
        if watcher.returncode != 0:
            raise LabError(f"the watcher failed: {err[-1500:]}")
        return {**answer, **json.loads(out)}

    def put_to_sleep(self, *, gateway_knows: bool) -> None:
        power_cli.sleep(self.lab, self.record)
        if gateway_knows:
            self.wait_gateway_state("asleep")

    def wait_gateway_state(self, wanted: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = (f"import urllib.request,json;r=urllib.request.Request({self.admin_url!r},"
                    f"headers={{'Authorization':'Bearer {self.admin_token}'}});"
                    "print(urllib.request.urlopen(r,timeout=5).read().decode())")
            argv = ["ip", "netns", "exec", netns_name(self.client), sys.executable, "-c", code]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout
            if out:
                states = {u["name"]: u["state"] for u in json.loads(out)["upstreams"]}
                if states.get(self.upstream) == wanted:
                    return
            time.sleep(0.2)
        raise LabError(f"the gateway never reported {self.upstream} {wanted}")

    def packets_seen(self) -> int:
        log = lab_root() / "daemon.log"
        mac = self.inv.hosts[self.sleeper].mac
        return log.read_text().count(f"magic packet for {mac}") if log.exists() else 0

    def round(self) -> dict[str, Any]:
        self.put_to_sleep(gateway_knows=False)
        ready = in_client(self.lab, self.vantage, "ready", {
            "url": self.probe_url, "mac": self.inv.hosts[self.sleeper].mac,
            "broadcast": str(self.inv.lan.cidr.broadcast_address)})["seconds"]
        # The gateway never probes a host it holds asleep: the first request tells it
        # the box is up again (a spare magic packet to an awake box is harmless).
        if self.chat(1)[0]["status"] != 200:
            raise LabError("request to the awake box failed")
        warm = [self.chat(1)[0] for _ in range(3)]
        warm_s = statistics.median(r["seconds"] for r in warm)
        warm_ttft = statistics.median(r["first_token_s"] for r in warm)
        self.put_to_sleep(gateway_knows=True)
        woken = self.wake_request()
        if woken["status"] != 200:
            raise LabError(f"request to the sleeping box answered {woken['status']}")
        return {"ready_s": ready, "warm_s": warm_s, "warm_first_token_s": warm_ttft,
                "wake_s": woken["seconds"], "wake_first_token_s": woken["first_token_s"],
                "added_ms": (woken["seconds"] - ready - warm_s) * 1000,
                "added_first_token_ms": (woken["first_token_s"] - ready - warm_ttft) * 1000,
                "phases": self.phases(woken)}

    def phases(self, woken: dict[str, Any]) -> dict[str, float | None]:
        """The wake request split at the packet, sshd, the engine and the first token (s)."""
        t0 = float(woken["sent_at"])
        boot = lab_machine.read_boot(self.record)
        booted = boot.get("booted_at")
        packet = float(booted) if booted is not None and float(booted) >= t0 - 0.5 else None
        sshd, engine = woken.get("sshd_at"), woken.get("engine_at")
        first = t0 + float(woken["first_token_s"])

        def span(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else b - a
        return {"request_to_packet_s": span(t0, packet), "packet_to_sshd_s": span(packet, sshd),
                "sshd_to_engine_s": span(sshd, engine), "engine_to_first_token_s": span(engine, first),
                "first_token_to_answer_s": float(woken["seconds"]) - float(woken["first_token_s"]),
                "boot_to_sshd_by_power_controller_s": boot.get("sshd_s")}

    def burst(self, count: int) -> dict[str, Any]:
        self.put_to_sleep(gateway_knows=True)
        before = self.packets_seen()
        answers = self.chat(count)
        time.sleep(1.0)  # let the power controller log every packet it got
        statuses: dict[str, int] = {}
        for a in answers:
            statuses[str(a["status"])] = statuses.get(str(a["status"]), 0) + 1
        return {"requests": count, "ok": statuses.get("200", 0), "statuses": statuses,
                "hold_bound": self.hold_bound, "magic_packets": self.packets_seen() - before}


def run(args: argparse.Namespace) -> int:
    if args.summarize:
        recorded = json.loads(args.summarize.read_text())
        result = {**summarize(recorded["rounds"], recorded["burst"], recorded.get("idle")),
                  "loadavg": recorded.get("loadavg")}
        print("\n".join(report_lines(result)))
        return 0
    if args.out is None:
        print("bench wake: --out FILE (or --summarize FILE)", file=sys.stderr)
        return 2
    inv = load_inventory(args.inventory, group_defaults())
    lab = load_record(lab_root())
    if lab is None or inv.gateway is None:
        print("bench wake: needs the lab up and deployed (hearth lab deploy) and a gateway", file=sys.stderr)
        return 2
    bench = WakeBench(inv, lab)
    if lab_machine.power_state(bench.record) != "on":
        power_cli.wake(lab, bench.record)
    idle = idle_leg(bench, args.inventory, args.idle_minutes) if args.idle_minutes > 0 else None
    if idle:
        print("\n".join(idle_lines(idle)), flush=True)
    rounds = []
    for i in range(args.rounds):
        rounds.append(bench.round())
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(
            f"{k.removesuffix('_s')} {v:.3f}s" for k, v in rounds[-1]["phases"].items() if v is not None),
            flush=True)
    result = summarize(rounds, bench.burst(args.concurrent), idle)
    result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(report_lines(result)))
    print(f"written: {args.out}")
    return 0


PHASES = {
    "request_to_packet_s": "request -> magic packet (gateway decides, sends; controller starts the boot)",
    "packet_to_sshd_s": "magic packet -> sshd answers (boot)",
    "sshd_to_engine_s": "sshd -> Ollama answers the gateway host over the overlay",
    "engine_to_first_token_s": "Ollama up -> first token through the gateway",
    "first_token_to_answer_s": "first token -> whole answer",
}


def _p50_max(values: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank: the slowest value below 100 of them) and max."""
    vals = sorted(values)
    if not vals:
        return {}
    return {"p50": statistics.median(vals), "p99": vals[math.ceil(0.99 * len(vals)) - 1], "max": vals[-1]}


def summarize(rounds: list[dict[str, Any]], burst: dict[str, Any],
              idle: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures of a run (p50, p99 and max over the rounds) and the idle leg's."""
    added = sorted(r["added_ms"] for r in rounds)
    phases = {k: _p50_max([r["phases"][k] for r in rounds if r["phases"].get(k) is not None])
              for k in PHASES}
    return {
        "benchmark": "wake", "idle": idle, "rounds": rounds, "burst": burst, "phases": phases,
        "ready_p50_s": statistics.median(r["ready_s"] for r in rounds),
        "wake_via_gateway_p50_s": statistics.median(r["wake_s"] for r in rounds),
        "wake_first_token": _p50_max([r["wake_first_token_s"] for r in rounds]),
        "warm_request_p50_ms": statistics.median(r["warm_s"] for r in rounds) * 1000,
        "gateway_added_p50_ms": statistics.median(added), "gateway_added_max_ms": added[-1],
        "gateway_added_first_token": _p50_max([r["added_first_token_ms"] for r in rounds]),
        # within one wake: the engine answering the gateway host -> the client's first token,
        # less the awake request's first token (no boot-to-boot variance in it)
        "gateway_added_in_wake_ms": _p50_max([
            (r["phases"]["engine_to_first_token_s"] - r["warm_first_token_s"]) * 1000 for r in rounds
            if r["phases"].get("engine_to_first_token_s") is not None]),
    }


def report_lines(result: dict[str, Any]) -> list[str]:
    """The printed figures."""
    n = len(result["rounds"])
    out = [*idle_lines(result.get("idle")),
           f"request to a sleeping box, {n} rounds (p50 / p99, seconds; p99 = the slowest below 100 rounds):"]
    for key, label in PHASES.items():
        got = result["phases"].get(key)
        out.append(f"  {label:<78} " + (f"{got['p50']:7.3f} / {_p99(got):7.3f}" if got else "      -"))
    ft = result["wake_first_token"]
    out += [
        f"  {'request -> first token':<78} {ft['p50']:7.3f} / {_p99(ft):7.3f}",
        f"box's own ready time (magic packet -> probe answers)  p50 {result['ready_p50_s']:.3f} s",
        f"request through the gateway to the sleeping box       p50 {result['wake_via_gateway_p50_s']:.3f} s",
        f"same request, box awake                               p50 {result['warm_request_p50_ms']:.1f} ms",
    ]
    inside = result.get("gateway_added_in_wake_ms") or {}
    if inside:
        out.append(f"gateway adds within the wake (engine up -> first token, less the awake one)  "
                   f"p50 {inside['p50']:.0f} ms, p99 {_p99(inside):.0f} ms  (target <= 250 ms at p99 over {n} "
                   f"rounds: {'met' if _p99(inside) <= 250 else 'MISSED'})")
    out += [
        f"same by subtraction across boots (wake - own ready - awake)  p50 {result['gateway_added_p50_ms']:.0f} ms, "
        f"max {result['gateway_added_max_ms']:.0f} ms (boot-to-boot variance included)",
    ]
    b = result["burst"]
    bound = (f"the gateway holds up to {b['hold_bound']} for one wake" if "hold_bound" in b
             else f"recorded when the route admitted {b.get('route_capacity')}: the box's slots + its queue")
    out.append(f"{b['requests']} requests at once to the sleeping box: {b['ok']} answered 200, "
               f"{b['magic_packets']} magic packet(s); statuses {b.get('statuses')} ({bound})")
    return out


def _p99(got: dict[str, float]) -> float:
    return got.get("p99", got["max"])  # a run recorded before p99 was kept: its max (5 rounds)
