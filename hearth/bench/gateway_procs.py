"""Processes of the gateway bench: spawn pinned to a CPU, wait until ready, read /proc.

Also creates LiteLLM's own virtualenv on first use (its pins conflict with ours),
in ``$XDG_CACHE_HOME/hearth/litellm-venv`` (default ``~/.cache/hearth/litellm-venv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

# Newest litellm[proxy] that installs here: 1.106.3+ (and every 1.108/1.109) need
# certifi>=2026.10.19, which the index does not have. Keep in step with pyproject's
# `bench` extra.
LITELLM_VERSION = "1.106.2"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_layout() -> tuple[int | None, int | None]:
    """(CPU for the load generator + mock, CPU for the proxy under test), or Nones."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[-1]


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


@dataclass
class Proc:
    """A started child process and where it listens."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    @property
    def url(self) -> str:
        """Its base URL on 127.0.0.1."""
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        """Resident set size (VmRSS) in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        """User + system CPU seconds so far (from /proc/<pid>/stat)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def hearth_root() -> str:
    """The directory holding the ``hearth`` package this process runs."""
    return str(Path(__file__).resolve().parents[2])


def spawn(name: str, argv: list[str], workdir: Path, cpu: int | None,
          env: dict[str, str | None] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` pinned to ``cpu``, output to ``workdir/<name>.log``
    (``env`` values of None remove the variable).

    The child imports this process's ``hearth`` (:func:`hearth_root` is appended to
    ``PYTHONPATH``), not whichever checkout the virtualenv's editable install points
    at: a worktree sharing another checkout's venv would otherwise bench that
    checkout's gateway. Entries already on ``PYTHONPATH`` stay first (the A/B bench
    puts each version's directory there).
    """
    log = (workdir / f"{name}.log").open("wb")
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (full.get("PYTHONPATH"), hearth_root()) if p)
    environ = {k: v for k, v in full.items() if v is not None}
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=environ, cwd=workdir,
                            preexec_fn=(lambda: _pin(cpu)), start_new_session=True)


async def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path,
                    timeout_s: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (bounded); raise with the log tail if not."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    if proc.poll() is None:  # never leave a half-started child behind
        proc.kill()
        proc.wait(5)
    raise RuntimeError(f"{url} never became ready (exit={proc.poll()}):\n{tail}")


async def start_python(name: str, module: str, args: list[str], workdir: Path,
                       cpu: int | None, ready_path: str) -> Proc:
    """Run ``python -m module args --port P`` and wait until ``ready_path`` answers."""
    port = free_port()
    p = spawn(name, [sys.executable, "-m", module, *args, "--port", str(port)], workdir, cpu)
    proc = Proc(name, p, port, workdir / f"{name}.log")
    await wait_http(proc.url + ready_path, p, proc.log)
    return proc


def pin_loadgen() -> tuple[int | None, int | None]:
    """:func:`cpu_layout`, with this process (the load generator) pinned to the first CPU."""
    lg, px = cpu_layout()
    if lg is not None:
        os.sched_setaffinity(0, {lg})
    return lg, px


async def start_mock(workdir: Path, cpu: int | None, latency_ms: float = 1, chunks: int = 8,
                     chunk_interval_ms: float = 2) -> Proc:
    """The mock upstream (``hearth.bench.mock_upstream``) on ``cpu``, ready on /v1/models."""
    return await start_python("mock", "hearth.bench.mock_upstream",
                              ["--latency-ms", str(latency_ms), "--chunks", str(chunks),
                               "--chunk-interval-ms", str(chunk_interval_ms)], workdir, cpu, "/v1/models")


async def start_hearth(mock_url: str, workdir: Path, cpu: int | None, name: str = "hearth",
                       event_loop: str = "auto") -> Proc:
    """Start ``hearth gateway serve`` with a generated one-upstream policy."""
    port = free_port()
    token = workdir / "admin.token"
    token.write_text("bench-admin-token\n")
    policy = {
        "listen": [f"127.0.0.1:{port}"],
        "admin_token_file": str(token),
        "upstreams": {"mock": {"engine": "vllm", "base_url": mock_url, "model": "bench-model",
                               "slots": 100000}},
        "routes": {"chat": {"upstreams": ["mock"]}},
        "routing": {"default_route": "chat"},
        # the load generator is one peer opening as many connections as the step needs;
        # the relays it is compared with have no such cap either
        "limits": {"connections_per_peer": 100000},
    }
    cfg = workdir / f"{name}-gateway.json"
    cfg.write_text(json.dumps(policy, indent=1))
    argv = [sys.executable, "-m", "hearth.cli", "gateway", "serve", "--config", str(cfg),
            "--log-level", "WARNING", "--event-loop", event_loop]
    p = spawn(name, argv, workdir, cpu)
    proc = Proc(name, p, port, workdir / f"{name}.log")
    await wait_http(proc.url + "/readyz", p, proc.log)
    return proc


# -- LiteLLM ------------------------------------------------------------------------


def litellm_venv() -> Path:
    """Where LiteLLM's own virtualenv lives."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hearth" / "litellm-venv"


def ensure_litellm(version: str = LITELLM_VERSION, quiet: bool = False) -> Path:
    """Create the LiteLLM venv if missing or of another version; return its ``litellm``."""
    venv = litellm_venv()
    marker = venv / ".hearth-litellm-version"
    exe = venv / "bin" / "litellm"
    if exe.exists() and marker.exists() and marker.read_text().strip() == version:
        return exe
    if not quiet:
        print(f"bench: creating LiteLLM {version} virtualenv in {venv} (first use only)",
              file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-q", "--disable-pip-version-check",
                    f"litellm[proxy]=={version}"], check=True)
    marker.write_text(version + "\n")
    return exe


_UVICORN_LOG = {  # uvicorn logging with the access log off (hearth's is off too)
    "version": 1, "disable_existing_loggers": False,
    "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {"uvicorn": {"handlers": ["default"], "level": "WARNING"},
                "uvicorn.error": {"level": "WARNING"},
                "uvicorn.access": {"handlers": ["default"], "level": "WARNING",
                                   "propagate": False}},
}


async def start_litellm(mock_url: str, workdir: Path, cpu: int | None) -> Proc:
    """Start LiteLLM's proxy: one worker, no database, no callbacks, no retries."""
    exe = ensure_litellm()
    port = free_port()
    cfg = workdir / "litellm.yaml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "model_list": [{"model_name": "bench-model", "litellm_params": {
            "model": "openai/bench-model", "api_base": mock_url + "/v1", "api_key": "sk-none"}}],
        "litellm_settings": {"num_retries": 0, "request_timeout": 60, "telemetry": False,
                             "callbacks": [], "success_callback": [], "failure_callback": [],
                             "set_verbose": False},
        "general_settings": {"disable_spend_logs": True, "disable_error_logs": True,
                             # loopback-only benchmark: no auth, like hearth's loopback mode
                             "dangerously_permit_weak_or_unset_master_key": True},
    }, indent=1))
    logcfg = workdir / "litellm-log.json"
    logcfg.write_text(json.dumps(_UVICORN_LOG))
    env: dict[str, str | None] = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
           "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "true", "DATABASE_URL": None,
           "NO_DOCS": "True"}
    argv = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1", "--log_config", str(logcfg)]
    p = spawn("litellm", argv, workdir, cpu, env)
    proc = Proc("litellm", p, port, workdir / "litellm.log")
    await wait_http(proc.url + "/health/liveliness", p, proc.log, timeout_s=180)
    return proc
