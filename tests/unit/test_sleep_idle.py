"""Sleeping again: roles/sleep's files from the inventory, and the hearth-idle script's
decisions (its pure parts, then whole runs against the real Ollama stand-in)."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from hearth.configs import sleep as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from tests.unit.test_lab_ollama_standin import MODEL, MakeServer, make_server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def _inv(name: str = "lab.yml"):  # type: ignore[no-untyped-def]
    return load_inventory(REPO / "inventory" / name, group_defaults())


def _script(tmp_path: Path) -> tuple[Path, ModuleType]:
    """The script exactly as the role writes it, imported."""
    (script,) = [f for f in configs.host_files(_inv(), "lab-ollama") if f.dest == configs.SCRIPT]
    path = tmp_path / "hearth-idle"
    path.write_text(script.render())
    spec = importlib.util.spec_from_loader("hearth_idle", loader=None)
    assert spec
    mod = importlib.util.module_from_spec(spec)
    exec(compile(path.read_text(), str(path), "exec"), mod.__dict__)
    return path, mod


@pytest.fixture
def idle(tmp_path: Path) -> ModuleType:
    return _script(tmp_path)[1]


@pytest.mark.parametrize("shape", ["lab.yml", "lab2.yml", "example.yml"])
def test_files_only_on_linux_sleepers(shape: str) -> None:
    inv = _inv(shape)
    for name, host in inv.hosts.items():
        got = {f.dest for f in configs.host_files(inv, name)}
        if host.os == "linux" and host.sleep.sleeps:
            assert got == {configs.SCRIPT, configs.CONFIG, configs.SERVICE, configs.TIMER}
        else:
            assert got == set()


def test_config_comes_from_the_inventory() -> None:
    inv = _inv("lab2.yml")
    for name, host in inv.hosts.items():
        if not configs.applies(inv, name):
            continue
        (conf,) = [f for f in configs.host_files(inv, name) if f.dest == configs.CONFIG]
        data = json.loads(conf.render())
        assert data["idle_minutes"] == host.sleep.idle_minutes
        assert data["automation_user"] == (host.ssh_user or inv.ssh.user)
        assert [(s["engine"], s["port"]) for s in data["serves"]] == [(s.engine, s.listen_port) for s in host.serves]
        assert str(inv.hosts[inv.gateway.host].overlay_ip) in data["ignore_peers"]
        assert str(host.overlay_ip) in data["ignore_peers"]
        (timer,) = [f for f in configs.host_files(inv, name) if f.dest == configs.TIMER]
        assert f"OnUnitActiveSec={configs.interval_s(host.sleep.idle_minutes)}s" in timer.render()


@pytest.mark.parametrize(("minutes", "seconds"), [(1, 15), (2, 30), (4, 60), (15, 60), (120, 60)])
def test_interval(minutes: int, seconds: int) -> None:
    assert configs.interval_s(minutes) == seconds


def test_script_is_not_touched_by_the_template_engine(tmp_path: Path) -> None:
    path, _ = _script(tmp_path)
    assert path.read_text() == (REPO / "templates" / "sleep" / "hearth-idle.py.j2").read_text()


CFG = {"idle_minutes": 2, "automation_user": "hearth", "serves": [], "ignore_peers": [], "state": "/x"}


def test_the_clock_and_the_decisions(idle: ModuleType) -> None:
    action, msg, st = idle.decide(CFG, {}, 1000.0, "boot1", [])
    assert action == "idle" and "idle 0s of 120s" in msg
    assert st == {"boot_id": "boot1", "last_active": 1000.0, "settings": idle.settings_id(CFG)}
    action, msg, st = idle.decide(CFG, st, 1100.0, "boot1", [])
    assert action == "idle" and "idle 100s of 120s" in msg
    action, msg, st2 = idle.decide(CFG, st, 1110.0, "boot1", ["x: model loaded: m"])
    assert action == "awake" and "model loaded" in msg and st2["last_active"] == 1110.0
    action, msg, st3 = idle.decide(CFG, st2, 1230.0, "boot1", [])
    assert action == "suspend" and "idle 120s >= 120s" in msg
    assert st3["last_active"] == 1230.0  # after the wake the clock starts again
    # a new boot (the container kind: powered off, booted by the packet) restarts the clock
    assert idle.decide(CFG, st2, 5000.0, "boot2", [])[0] == "idle"


def test_changed_settings_start_the_clock_again(idle: ModuleType) -> None:
    """A deploy that shortens idle_minutes below the time already idle does not suspend the
    host at the next tick, under the deploy's own later steps: the clock starts again."""
    _, _, st = idle.decide(CFG, {}, 1000.0, "boot1", [])
    assert idle.decide(CFG, st, 1130.0, "boot1", [])[0] == "suspend"  # unchanged settings: due
    shorter = {**CFG, "idle_minutes": 1}
    action, msg, st2 = idle.decide(shorter, st, 1130.0, "boot1", [])
    assert action == "idle" and "idle 0s of 60s" in msg and st2["last_active"] == 1130.0
    assert idle.decide(shorter, st2, 1189.0, "boot1", [])[0] == "idle"
    assert idle.decide(shorter, st2, 1190.0, "boot1", [])[0] == "suspend"


def test_engine_states(idle: ModuleType) -> None:
    ollama = {"name": "m", "engine": "ollama", "address": "127.0.0.1", "port": 1}
    vllm = {"name": "v", "engine": "vllm", "address": "127.0.0.1", "port": 2}

    def answers(body: bytes):  # type: ignore[no-untyped-def]
        return lambda url: body

    assert idle.engine_reasons(ollama, answers(b'{"models": []}')) == []
    (why,) = idle.engine_reasons(ollama, answers(b'{"models": [{"name": "qwen:14b"}]}'))
    assert "model loaded: qwen:14b" in why
    metrics = (b'# HELP vllm:num_requests_running x\nvllm:num_requests_running{model_name="a"} 0.0\n'
               b'vllm:num_requests_waiting{model_name="a"} 2.0\n')
    (why,) = idle.engine_reasons(vllm, answers(metrics))
    assert "0 request(s) running, 2 waiting" in why
    assert idle.engine_reasons(vllm, answers(metrics.replace(b"2.0", b"0.0"))) == []

    def refused(url: str) -> bytes:
        raise idle.urllib.error.URLError(ConnectionRefusedError(111, "refused"))

    def hangs(url: str) -> bytes:
        raise TimeoutError("timed out")

    assert idle.engine_reasons(ollama, refused) == []  # not running: serves nothing
    (why,) = idle.engine_reasons(ollama, hangs)
    assert "unknown" in why and "staying up" in why


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0C4D0A0A:2CAA 0A4D0A0A:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1
   1: 0C4D0A0A:2CAA 0D4D0A0A:D432 01 00000000:00000000 00:00000000 00000000  1000        0 2
   2: 0C4D0A0A:2CAA 0E4D0A0A:D433 0A 00000000:00000000 00:00000000 00000000  1000        0 3
   3: 0C4D0A0A:0016 0E4D0A0A:D434 01 00000000:00000000 00:00000000 00000000  1000        0 4
   4: 0100007F:2CAA 0100007F:D435 01 00000000:00000000 00:00000000 00000000  1000        0 5
"""
TCP6 = """  sl  local_address remote_address st
   0: 0000000000000000FFFF00000C4D0A0A:2CAA 0000000000000000FFFF00000F4D0A0A:D436 01 0
"""


def test_connections_from_others_than_the_gateway(idle: ModuleType) -> None:
    # port 0x2CAA = 11434; 10.10.77.10 is the gateway, .13 a direct client, .14 only has SSH
    got = idle.connection_reasons([TCP, TCP6], {11434}, {"10.10.77.10"})
    assert got == ["inference connection to port 11434 from 10.10.77.13:54322",
                   "inference connection to port 11434 from 10.10.77.15:54326"]


def test_ssh_sessions_but_the_automation_users(idle: ModuleType, tmp_path: Path) -> None:
    for pid, cmd in {"10": "sshd: /usr/sbin/sshd -D", "11": "sshd: hearth@notty", "12": "sshd: alice@pts/0",
                     "13": "sshd: alice [priv]", "14": "python3 x"}.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(cmd.encode() + b"\0")
    assert idle.ssh_reasons(str(tmp_path), "hearth") == ["SSH session of alice"]
    assert idle.ssh_reasons(str(tmp_path), "alice") == ["SSH session of hearth"]


def test_sleep_inhibitors(idle: ModuleType) -> None:
    def run(out: str):  # type: ignore[no-untyped-def]
        return lambda *a, **k: subprocess.CompletedProcess(a, 0, out, "")

    assert idle.inhibitor_reasons(run('s "shutdown:sleep:idle"\n')) != []
    assert idle.inhibitor_reasons(run('s "shutdown:handle-lid-switch"\n')) == []
    assert idle.inhibitor_reasons(run("")) == []


def _run(path: Path, tmp: Path, serves: list[dict], last_active: float) -> tuple[str, list[str]]:
    """One run of the script with a recording `systemctl` first on PATH."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "systemctl"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp}/systemctl.log\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    state = tmp / "run" / "state.json"
    state.parent.mkdir(exist_ok=True)
    # /proc as a folder of its own: this machine's /proc shows lab machines' SSH sessions
    proc = tmp / "proc"
    (proc / "net").mkdir(parents=True, exist_ok=True)
    for table in ("tcp", "tcp6"):
        (proc / "net" / table).write_text("  sl  local_address rem_address   st\n")
    settings = {**CFG, "idle_minutes": 1, "automation_user": "hearth", "proc": str(proc),
                "serves": serves, "state": str(state)}
    cfg = tmp / "idle.json"
    cfg.write_text(json.dumps(settings))
    module: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), module)
    # the clock as the script left it under these same settings
    state.write_text(json.dumps({"boot_id": boot_id, "last_active": last_active,
                                 "settings": module["settings_id"](settings)}))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, str(path), str(cfg)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    log = tmp / "systemctl.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return proc.stdout, calls


def test_whole_runs_against_the_ollama_standin(tmp_path: Path, make_server: MakeServer) -> None:  # noqa: F811
    path, _ = _script(tmp_path)
    server = make_server(OLLAMA_KEEP_ALIVE="0")
    assert server.cli("pull", MODEL).returncode == 0
    serves = [{"name": MODEL, "engine": "ollama", "address": "127.0.0.1", "port": server.port}]
    long_ago = time.monotonic() - 3600

    # a keep-warm window (the gateway loads the model with a keep_alive): stays up
    httpx.post(f"{server.url}/api/generate", json={"model": MODEL, "keep_alive": "10m"}, timeout=10)
    out, calls = _run(path, tmp_path, serves, long_ago)
    assert calls == [] and out.startswith("awake: ") and f"model loaded: {MODEL}" in out

    # unloaded and idle long enough: suspends, saying why
    httpx.post(f"{server.url}/api/generate", json={"model": MODEL, "keep_alive": 0}, timeout=10)
    assert server.ps() == []
    out, calls = _run(path, tmp_path, serves, long_ago)
    assert calls == ["suspend"] and out.startswith("suspending: idle "), out

    # not yet idle long enough: stays up and says how long
    out, calls = _run(path, tmp_path, serves, time.monotonic() - 5)
    assert calls == [] and out.startswith("idle ") and "of 60s" in out

    # the engine not running at all serves nothing
    server.stop()
    out, calls = _run(path, tmp_path, serves, long_ago)
    assert calls == ["suspend"], out
