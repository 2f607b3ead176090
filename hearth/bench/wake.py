"""`hearth bench wake`: what the gateway adds to a sleeping box's own wake-up time.

Needs the lab up and deployed (`hearth lab deploy`). Every timing is taken inside
another lab machine's network namespace (a client on the overlay, as Cursor would
be), so no SSH round trip is in the figures. Per round:

* ready  -- the box asleep, a magic packet sent directly; time until its upstream
            answers its cheap probe endpoint (the host's own ready time);
* warm   -- the box awake; one chat request through the gateway;
* wake   -- the box asleep and known asleep to the gateway; the same request
            through the gateway (which sends the magic packet and holds it);

added = wake - ready - warm. A last round sends several requests at once to the
sleeping box and counts the magic packets the lab's power controller received.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import upstream_name
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

async def chat(url, key, body, count):
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as s:
        async def one():
            t0 = time.perf_counter()
            async with s.post(url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=180)) as r:
                await r.read()
                return {"status": r.status, "seconds": time.perf_counter() - t0}
        return await asyncio.gather(*(one() for _ in range(count)))

mode, args = sys.argv[1], json.loads(sys.argv[2])
print(json.dumps(asyncio.run(ready(**args) if mode == "ready" else chat(**args))))
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench wake`."""
    p = subparsers.add_parser("wake", help="gateway overhead on top of a sleeping box's own wake-up (lab)")
    p.add_argument("--out", type=Path, required=True, help="write results here (JSON)")
    p.add_argument("--inventory", type=Path, default=cycle.REPO / "inventory" / "lab.yml")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrent", type=int, default=8, help="requests sent at once to the sleeping box")
    p.set_defaults(func=run)


def in_client(lab: LabRecord, client: str, mode: str, args: dict[str, Any]) -> Any:
    argv = ["ip", "netns", "exec", netns_name(client), sys.executable, "-c", PROBE, mode, json.dumps(args)]
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
        self.key = resolve_secret(next(iter(inv.clients.values())).key)
        self.admin_token = resolve_secret(inv.gateway.admin_token)
        self.record = lab.machines[self.sleeper]

    def chat(self, count: int = 1) -> list[dict[str, Any]]:
        body = {"model": f"{self.inv.routing.alias_prefix if self.inv.routing else 'hearth'}/{self.route}",
                "messages": [{"role": "user", "content": "wake up"}]}
        return in_client(self.lab, self.client, "chat",
                         {"url": self.chat_url, "key": self.key, "body": body, "count": count})

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

    def round(self) -> dict[str, float]:
        self.put_to_sleep(gateway_knows=False)
        ready = in_client(self.lab, self.client, "ready", {
            "url": self.probe_url, "mac": self.inv.hosts[self.sleeper].mac,
            "broadcast": str(self.inv.lan.cidr.broadcast_address)})["seconds"]
        # The gateway never probes a host it holds asleep: the first request tells it
        # the box is up again (a spare magic packet to an awake box is harmless).
        if self.chat(1)[0]["status"] != 200:
            raise LabError("request to the awake box failed")
        warm = statistics.median(r["seconds"] for r in self.chat(1) + self.chat(1) + self.chat(1))
        self.put_to_sleep(gateway_knows=True)
        (woken,) = self.chat(1)
        if woken["status"] != 200:
            raise LabError(f"request to the sleeping box answered {woken['status']}")
        return {"ready_s": ready, "warm_s": warm, "wake_s": woken["seconds"],
                "added_ms": (woken["seconds"] - ready - warm) * 1000}

    def burst(self, count: int) -> dict[str, int]:
        self.put_to_sleep(gateway_knows=True)
        before = self.packets_seen()
        answers = self.chat(count)
        time.sleep(1.0)  # let the power controller log every packet it got
        return {"requests": count, "ok": sum(a["status"] == 200 for a in answers),
                "magic_packets": self.packets_seen() - before}


def run(args: argparse.Namespace) -> int:
    inv = load_inventory(args.inventory, group_defaults())
    lab = load_record(lab_root())
    if lab is None or inv.gateway is None:
        print("bench wake: needs the lab up and deployed (hearth lab deploy) and a gateway", file=sys.stderr)
        return 2
    bench = WakeBench(inv, lab)
    if lab_machine.power_state(bench.record) != "on":
        power_cli.wake(lab, bench.record)
    rounds = [bench.round() for _ in range(args.rounds)]
    burst = bench.burst(args.concurrent)
    added = sorted(r["added_ms"] for r in rounds)
    result = {
        "benchmark": "wake", "rounds": rounds, "burst": burst,
        "ready_p50_s": statistics.median(r["ready_s"] for r in rounds),
        "wake_via_gateway_p50_s": statistics.median(r["wake_s"] for r in rounds),
        "warm_request_p50_ms": statistics.median(r["warm_s"] for r in rounds) * 1000,
        "gateway_added_p50_ms": statistics.median(added), "gateway_added_max_ms": added[-1],
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"box's own ready time (magic packet -> probe answers)  p50 {result['ready_p50_s']:.3f} s")
    print(f"request through the gateway to the sleeping box       p50 {result['wake_via_gateway_p50_s']:.3f} s")
    print(f"same request, box awake                               p50 {result['warm_request_p50_ms']:.1f} ms")
    print(f"gateway adds on top of the box's own wake-up          p50 {result['gateway_added_p50_ms']:.0f} ms, "
          f"max {result['gateway_added_max_ms']:.0f} ms  (target <= 250 ms: "
          f"{'met' if result['gateway_added_p50_ms'] <= 250 else 'MISSED'})")
    print(f"{burst['requests']} requests at once to the sleeping box: {burst['ok']} answered 200, "
          f"{burst['magic_packets']} magic packet(s)")
    print(f"written: {args.out}")
    return 0
