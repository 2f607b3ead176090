"""The Ollama stand-in (``tests/standins/ollama/ollama.py``) as a process on loopback.

One way to start it for every gateway test: ``ollama_standin(models_dir, models)``
runs ``ollama.py serve`` on 127.0.0.1 (a free port, or the one given), waits (bounded)
until ``/api/version`` answers, pulls the models, yields its base URL and stops it
after (SIGTERM, SIGKILL if it does not exit).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "standins" / "ollama" / "ollama.py"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, body: dict | None = None, timeout_s: float = 10) -> Any:
    """GET ``url`` (POST ``body`` as JSON when given); the decoded JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as r:
        return json.load(r)


def stop(proc: subprocess.Popen, wait_s: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``wait_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(wait_s)


@contextlib.contextmanager
def ollama_standin(models_dir: Path, models: Iterable[str], *, port: int | None = None, keep_alive: str = "0",
                   ready_within_s: float = 20, **env: str) -> Iterator[str]:
    """Run the stand-in with ``models`` pulled into ``models_dir``; yield ``http://127.0.0.1:PORT``.

    ``keep_alive`` is its OLLAMA_KEEP_ALIVE; ``env`` adds or overrides any other
    variable (``OLLAMA_MAX_LOADED_MODELS="2"``, ``OLLAMA_STANDIN_ANSWER_S="1.0"``).
    """
    port = port or free_port()
    full = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_KEEP_ALIVE": keep_alive,
            "OLLAMA_MODELS": str(models_dir), **env}
    proc = subprocess.Popen([sys.executable, str(STANDIN), "serve"], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within_s
        while True:
            try:
                call(url + "/api/version")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the Ollama stand-in did not answer on {url} within {ready_within_s:.0f}s "
                                       f"(exit code {proc.poll()})") from None
                time.sleep(0.05)
        for m in models:
            call(url + "/api/pull", {"model": m, "stream": False})
        yield url
    finally:
        stop(proc)
