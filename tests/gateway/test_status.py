"""`hearth status` against a real gateway (issue 13 item 4): one screen by health tier,
``--json``, exit 1 when a core service (the gateway, a terminal route) is down, and
nothing woken: no magic packet, no probe of an asleep upstream, no connection to an
asleep host. Host probes are replaced here (the example inventory's addresses are
never contacted); engines are the loopback stand-ins."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hearth import status
from hearth.cli import main
from hearth.deploy_data import group_defaults
from hearth.gateway.config import parse_config
from hearth.inventory import load_inventory

from .standins import EXAMPLE, StandinUpstream, example_config, running, wait_until
from .test_wake import PacketCatcher, setup


async def test_status_by_tier_without_waking_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    inv = load_inventory(EXAMPLE, group_defaults())
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    spark_model = example_config().upstreams["spark"].model
    spark = await StandinUpstream(spark_model).start()
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        data = cfg.model_dump(mode="json")
        data["upstreams"]["spark"]["base_url"] = spark.url
        try:
            async with running(parse_config(data)) as (base, st):
                await wait_until(lambda: st.upstreams["windows-gpu"].state == "asleep", "asleep")
                await wait_until(lambda: st.upstreams["spark"].state == "healthy", "spark up")
                probes, touched, asked = coder.probes, [], []

                def k3s(inv: object, server_asleep: bool) -> dict[str, object]:  # no SSH to example.yml
                    asked.append(server_asleep)
                    return {"server": "k3master", "state": "up", "error": None, "unknown_nodes": {},
                            "nodes": {"k3master": "Ready"}}
                report = await asyncio.to_thread(
                    status.collect, inv, base, "admin-secret",
                    tcp=lambda a, p: touched.append(a) or True, k3s=k3s)
                assert not catcher.packets and coder.probes == probes  # nothing woken, nothing probed
                core = {c["name"]: c for c in report["tiers"]["core"]}
                assert core["gateway"]["state"] == "up"
                assert core["route reasoning (terminal)"]["state"] == "up"
                assert report["ok"] is True
                inference = {u["name"]: u for u in report["tiers"]["inference"]}
                assert inference["windows-gpu"]["state"] == "asleep" and inference["windows-gpu"]["loaded"] is None
                assert inference["spark"]["state"] == "up" and inference["spark"]["loaded"] == [spark_model]
                assert inference["gpu-1-0"]["state"] in ("down", "degraded")
                hosts = {h["name"]: h for h in report["tiers"]["infrastructure"]}
                assert set(hosts) == set(inv.hosts)
                assert hosts["windows-gpu"]["state"] == "asleep"
                assert str(inv.hosts["windows-gpu"].address) not in touched
                assert asked == [False] and hosts["k3master"]["k3s_node"] == "Ready"
                assert report["k3s"]["state"] == "up"
                text = status.render(report)
                for tier in ("core", "inference", "infrastructure"):
                    assert f"\n{tier}\n" in text
                assert len(text.splitlines()) < 50  # one screen

                monkeypatch.setenv("HEARTH_ADMIN_TOKEN", "admin-secret")
                rc = await asyncio.to_thread(main, ["status", str(EXAMPLE), "--gateway", base, "--no-probe",
                                                    "--json"])
                out = json.loads(capsys.readouterr().out)
                assert rc == 0 and out["ok"] is True

                spark.mode = "down"  # the terminal route's only upstream goes down
                st.upstreams["spark"].probe_now.set()
                await wait_until(lambda: st.upstreams["spark"].state == "down", "spark down")
                rc = await asyncio.to_thread(main, ["status", str(EXAMPLE), "--gateway", base, "--no-probe"])
                text = capsys.readouterr().out
                assert rc == 1 and "A CORE SERVICE IS DOWN" in text
                assert "route reasoning (terminal)" in text and "down" in text
                assert not catcher.packets
            # the gateway itself gone: down, exit 1
            rc = await asyncio.to_thread(main, ["status", str(EXAMPLE), "--gateway", base, "--no-probe", "--json"])
            out = json.loads(capsys.readouterr().out)
            assert rc == 1 and out["tiers"]["core"][0]["state"] == "down"
        finally:
            await spark.stop()
            for s in stands.values():
                await s.stop()
