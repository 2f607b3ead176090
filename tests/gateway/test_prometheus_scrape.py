"""A real Prometheus (Debian's binary, loopback, its own temp dir) scrapes a real
gateway and evaluates the shipped rules against it (issue 13 item 6).

The gateway serves the example inventory's routes with loopback stand-ins; the only
upstream of the terminal routes (spark) is down, so HearthTerminalRouteDown goes
pending for exactly those routes, while an asleep upstream raises nothing.
Every wait is bounded."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hearth.gateway.config import parse_config

from .standins import StandinUpstream, example_config, running, wait_until
from .test_wake import PacketCatcher, setup

PROMETHEUS = shutil.which("prometheus")
RULES = Path(__file__).resolve().parents[2] / "templates" / "prometheus" / "hearth-gateway.rules.yml"
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (Debian package 'prometheus', scripts/bootstrap)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _poll(session: aiohttp.ClientSession, url: str, what: str, ok: Any, within_s: float = 60) -> Any:
    deadline = time.monotonic() + within_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                last = await r.json(content_type=None) if r.status == 200 else r.status
                if r.status == 200 and ok(last):
                    return last
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            last = exc
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {within_s:.0f}s (last: {str(last)[:500]})")


async def test_prometheus_scrapes_the_gateway_and_evaluates_the_rules(tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        data = cfg.model_dump(mode="json")
        data["upstreams"]["spark"]["base_url"] = "http://127.0.0.1:9"  # the terminal routes' upstream: down
        terminal = sorted(n for n, r in example_config().routes.items() if r.terminal)
        assert terminal
        proc: subprocess.Popen[bytes] | None = None
        try:
            async with running(parse_config(data)) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep", "asleep")
                port = _free_port()
                conf = tmp_path / "prometheus.yml"
                conf.write_text(yaml.safe_dump({
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [{"job_name": "hearth-gateway",
                                        "static_configs": [{"targets": [base.removeprefix("http://")]}]}],
                }))
                log = (tmp_path / "prometheus.log").open("wb")
                proc = subprocess.Popen(
                    [PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'data'}",
                     f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
                    stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
                api = f"http://127.0.0.1:{port}"
                async with aiohttp.ClientSession() as s:
                    await _poll(s, f"{api}/api/v1/targets", "the gateway target is up",
                                lambda j: any(t["health"] == "up" for t in j["data"]["activeTargets"]))
                    q = await _poll(s, f"{api}/api/v1/query?query=hearth_upstream_up", "upstream series",
                                    lambda j: len(j["data"]["result"]) == len(data["upstreams"]))
                    states = {r["metric"]["upstream"]: r["metric"]["state"] for r in q["data"]["result"]}
                    assert states["windows-gpu"] == "asleep"
                    rules = await _poll(s, f"{api}/api/v1/rules", "rules loaded and evaluated",
                                        lambda j: j["data"]["groups"] and all(
                                            r["health"] == "ok" for g in j["data"]["groups"] for r in g["rules"]))
                    loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
                    assert {"HearthTerminalRouteDown", "HearthWakeFailing", "HearthUpstreamDown"} <= loaded
                    alerts = await _poll(
                        s, f"{api}/api/v1/query?query=ALERTS%7Balertname%3D%22HearthTerminalRouteDown%22%7D",
                        "HearthTerminalRouteDown pending for the terminal routes",
                        lambda j: sorted(r["metric"]["route"] for r in j["data"]["result"]) == terminal)
                    assert {r["metric"]["alertstate"] for r in alerts["data"]["result"]} <= {"pending", "firing"}
                    asleep = await _poll(s, f"{api}/api/v1/query?query=ALERTS", "alerts", lambda j: True)
                    assert not [r for r in asleep["data"]["result"]
                                if r["metric"].get("upstream") == "windows-gpu"], asleep
                assert not catcher.packets  # scraping never wakes anything
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            for stand in stands.values():
                await stand.stop()
