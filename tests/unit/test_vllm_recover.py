"""CUDA recovery: the files on GPU hosts and the gateway's admin action (never a terminal route's host)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import firewall, recover_cuda
from hearth.gateway import recover
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example() -> Any:
    return load_inventory(REPO / "inventory" / "example.yml")


def test_every_gpu_host_gets_the_unit_terminal_hosts_no_trigger(example: Any) -> None:
    assert recover_cuda.terminal_routes(example, "spark") == ["reasoning", "review"]
    spark = [f.dest for f in recover_cuda.host_files(example, "spark")]
    assert spark == [recover_cuda.SCRIPT, recover_cuda.UNIT]
    eyes = {f.dest: f for f in recover_cuda.host_files(example, "eyes")}
    assert recover_cuda.SOCKET in eyes and recover_cuda.TRIGGER_UNIT in eyes
    assert "ListenStream=10.77.0.40:4101" in eyes[recover_cuda.SOCKET].render()
    trigger_unit = eyes[recover_cuda.TRIGGER_UNIT].render()
    assert f"{recover_cuda.TOKEN} 10.77.0.1" in trigger_unit  # only the gateway host may trigger
    assert recover_cuda.host_files(example, "k3master") == []
    assert recover_cuda.host_files(example, "windows-gpu") == []
    assert [r.sources for r in firewall.rules(example, "eyes") if r.port == 4101] == [("10.77.0.1/32",)]
    assert all(r.port != 4101 for r in firewall.rules(example, "spark"))  # gateway host only: test_firewall_trigger


def test_script_stops_reloads_and_starts_in_order(example: Any) -> None:
    script = {f.dest: f for f in recover_cuda.host_files(example, "eyes")}[recover_cuda.SCRIPT].render()
    assert "start_order=( vllm-qwen2.5-vl-7b-router-awq.service )" in script
    assert script.index("systemctl stop") < script.index("modprobe -r nvidia_uvm") < script.index('systemctl start "')
    compile_check = __import__("subprocess").run(["bash", "-n"], input=script, text=True, check=False)
    assert compile_check.returncode == 0


def test_trigger_token_is_derived_per_host() -> None:
    first = recover.trigger_token("admin", "eyes")
    assert len(first) == 64 and first != recover.trigger_token("admin", "hands")
    assert first != recover.trigger_token("other", "eyes") and "admin" not in first


def config(example: Any, port: int | None = None, log_dir: Path | None = None) -> Any:
    cfg = gateway_config_from_inventory(example, resolve=lambda ref: ref, log_dir=str(log_dir or "/nonexistent"))
    if port is None:
        return cfg
    ups = {n: u.model_copy(update={"base_url": f"http://127.0.0.1:{port}"}) if u.host == "eyes" else u
           for n, u in cfg.upstreams.items()}
    return cfg.model_copy(update={"upstreams": ups})


def test_refuses_terminal_route_hosts_unknown_hosts_and_non_gpu_engines(example: Any) -> None:
    cfg = config(example)
    spark = asyncio.run(recover.recover_host(cfg, "admin", "spark"))
    assert spark.status == 409 and spark.body["error"]["code"] == "terminal_route_host"
    assert "page the operator" in spark.body["error"]["message"]
    assert asyncio.run(recover.recover_host(cfg, "admin", "nohost")).status == 404
    assert asyncio.run(recover.recover_host(cfg, "admin", "mouth")).status == 409  # LM Studio: not ours


def test_triggers_with_the_hosts_token_and_logs(example: Any, tmp_path: Path) -> None:
    seen: list[str] = []

    async def scenario() -> tuple[Any, Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = (await reader.readline()).decode().strip()
            seen.append(line)
            writer.write(b"accepted\n" if line == recover.trigger_token("admin", "eyes") else b"denied\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cfg = config(example, port, tmp_path)
        async with server:
            good = await recover.recover_host(cfg, "admin", "eyes", port)
            bad = await recover.recover_host(cfg, "wrong-admin-token", "eyes", port)
        gone = await recover.recover_host(cfg, "admin", "eyes", port)
        return good, (bad, gone)

    good, (bad, gone) = asyncio.run(scenario())
    assert good.status == 202 and good.body["recovery"] == "accepted"
    assert bad.status == 502 and bad.body["error"]["code"] == "trigger_refused"
    assert gone.status == 502 and gone.body["error"]["code"] == "trigger_unreachable"
    assert seen[0] == recover.trigger_token("admin", "eyes") and "admin" not in seen
    events = [json.loads(line) for line in (tmp_path / "recovery-events.jsonl").read_text().splitlines()]
    assert [e["result"] for e in events] == ["accepted", "denied", "unreachable"]


@pytest.mark.parametrize(("peer", "line"), [("10.42.0.5", "x"), ("10.77.0.1", "wrong"), ("10.77.0.1", "")])
def test_the_trigger_denies_and_logs_but_leaves_no_failed_unit(example: Any, tmp_path: Path,
                                                              peer: str, line: str) -> None:
    """A stray connection (in the lab: a pod probing its node's open ports) is denied and
    logged; the script still exits 0, or each one leaves a failed unit and a degraded host."""
    files = {f.dest: f for f in recover_cuda.host_files(example, "eyes")}
    script = tmp_path / "trigger.py"
    script.write_text(files[recover_cuda.TRIGGER].render())
    token = tmp_path / "token"
    token.write_text(recover.trigger_token("admin", "eyes") + "\n")
    run = subprocess.run([sys.executable, str(script), str(token), "10.77.0.1"], input=line + "\n",
                         capture_output=True, text=True, timeout=30, env={"REMOTE_ADDR": peer}, check=False)
    assert (run.returncode, run.stdout) == (0, "denied\n")
    assert f"denied a trigger from {peer}" in run.stderr
