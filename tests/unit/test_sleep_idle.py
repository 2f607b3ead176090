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


# Requests answered between two checks leave no loaded model on a KEEP_ALIVE=0 host (seed
# 000's setup): hearth-idle reads them from Ollama's request log and vLLM's counter.

REAL_GIN_LINE = ('[GIN] 2024/12/11 - 09:58:58 | 500 |        29m59s |      10.0.0.123 | POST     "/api/chat"')
"""A line of real Ollama's request log as journalctl -u ollama shows it (ollama/ollama#8387)."""


def test_ollamas_request_log_counts_inference_only(idle: ModuleType) -> None:
    lines = [REAL_GIN_LINE,
             '[GIN] 2024/12/11 - 09:59:00 | 200 |      1.2ms |       10.0.0.2 | GET      "/api/ps"',
             '[GIN] 2024/12/11 - 09:59:01 | 200 |     4.7s |       10.0.0.2 | POST     "/v1/chat/completions"',
             '[GIN] 2024/12/11 - 09:59:02 | 200 |      0.3ms |       10.0.0.2 | HEAD     "/"',
             'time=2024-12-11T09:59:03 level=INFO source=server.go msg="llama runner started"']
    assert idle.ollama_answered(lines) == (2, ["10.0.0.123", "10.0.0.2"])
    assert idle.ollama_answered([]) == (0, [])


def test_the_ollama_standins_request_log_reads_like_ollamas(idle: ModuleType, tmp_path: Path) -> None:
    from tests.unit.test_lab_ollama_standin import SCRIPT, _free_port

    port, log = _free_port(), tmp_path / "stderr.log"
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(tmp_path / "models")}
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "serve"], env=env, stderr=err)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 10
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "stand-in did not start"
                time.sleep(0.05)
        assert subprocess.run([sys.executable, str(SCRIPT), "pull", MODEL], env=env, capture_output=True,
                              check=False).returncode == 0  # fmt: skip
        httpx.get(f"{url}/api/ps", timeout=10)
        r = httpx.post(f"{url}/api/chat", json={"model": MODEL, "stream": False, "keep_alive": 0,
                                               "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(5)
    gin = [line for line in log.read_text().splitlines() if line.startswith("[GIN] ")]
    assert any(line.endswith('"/api/ps"') for line in gin), gin
    assert idle.ollama_answered(gin) == (1, ["127.0.0.1"]), gin


def _journal(entries: list[str], cursor: str):  # type: ignore[no-untyped-def]
    """A stand-in for `journalctl ... --show-cursor`: what it prints, and the calls made."""
    calls: list[list[str]] = []

    def run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "".join(f"{e}\n" for e in entries) + f"-- cursor: {cursor}\n", "")
    return run, calls


def test_the_journal_is_read_after_the_last_checks_cursor(idle: ModuleType) -> None:
    run, calls = _journal([REAL_GIN_LINE], "c1")
    assert idle.journal_after("ollama.service", None, run) == ([], "c1")  # first check: only where it ends
    assert calls[-1][-2:] == ["-n", "1"] and "-u" in calls[-1]
    run, calls = _journal([REAL_GIN_LINE], "c2")
    assert idle.journal_after("ollama.service", "c1", run) == ([REAL_GIN_LINE], "c2")
    assert calls[-1][-2:] == ["--after-cursor", "c1"]

    def nothing_new(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, "", "")
    assert idle.journal_after("ollama.service", "c2", nothing_new) == ([], "c2")  # the cursor stays


def test_a_request_answered_between_two_checks_restarts_the_idle_clock(idle: ModuleType) -> None:
    cfg = {**CFG, "ollama_unit": "ollama.service", "proc": "/nonexistent",
           "serves": [{"name": "m", "engine": "ollama", "address": "127.0.0.1", "port": 1}]}
    empty = lambda url: b'{"models": []}'  # noqa: E731 - KEEP_ALIVE=0: unloaded right after the answer
    no_inhibitor = _journal([], "c1")[0]
    marks: dict[str, Any] = {}
    assert idle.reasons(cfg, empty, no_inhibitor, marks) == [] and marks["ollama_cursor"] == "c1"
    run, _ = _journal([REAL_GIN_LINE], "c2")
    (why,) = idle.reasons(cfg, empty, run, marks)
    assert why == "ollama answered 1 request(s) since the last check (from 10.0.0.123)"
    assert marks["ollama_cursor"] == "c2"
    _, msg, st = idle.decide(cfg, {"boot_id": "b", "last_active": 0.0, "settings": idle.settings_id(cfg)},
                             1000.0, "b", [why])
    assert msg.startswith("awake: ollama answered") and st["last_active"] == 1000.0


def test_vllms_answered_requests_counter(idle: ModuleType) -> None:
    vllm = {"name": "v", "engine": "vllm", "address": "127.0.0.1", "port": 2}

    def metrics(done: float):  # type: ignore[no-untyped-def]
        return lambda url: (b'vllm:num_requests_running{model_name="a"} 0.0\n'
                            b'vllm:num_requests_waiting{model_name="a"} 0.0\n'
                            b'vllm:request_success_total{finished_reason="stop",model_name="a"} %.1f\n'
                            b'vllm:request_success_total{finished_reason="length",model_name="a"} 1.0\n' % done)
    marks: dict[str, Any] = {}
    assert idle.engine_reasons(vllm, metrics(4), marks) == []  # the first look: a baseline
    assert idle.engine_reasons(vllm, metrics(4), marks) == []
    (why,) = idle.engine_reasons(vllm, metrics(6), marks)
    assert why.endswith("answered 2 request(s) since the last check")
    assert idle.engine_reasons(vllm, metrics(0), marks) == []  # restarted: counts from 0 again
    assert marks["vllm_answered"] == {"v": 1.0}
