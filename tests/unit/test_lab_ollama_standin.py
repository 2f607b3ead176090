"""The Ollama stand-in (tests/standins/ollama): env, keep-alive, HTTP and CLI surface."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "standins" / "ollama" / "ollama.py"
MODEL = "qwen2.5-coder:14b"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ollama_standin", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


standin = _module()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0), ("5m", 300), ("24h", 86400), ("1h30m", 5400), ("300", 300), (90, 90),
     ("250ms", 0.25), ("-1", float("inf")), (-1, float("inf")), ("-5m", float("inf"))],
)  # fmt: skip
def test_keep_alive_durations(value: object, seconds: float) -> None:
    assert standin.parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "m5", "", "1d", True])
def test_bad_keep_alive_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        standin.parse_keep_alive(value)


@pytest.mark.parametrize(
    ("value", "hostport"),
    [(None, ("127.0.0.1", 11434)), ("0.0.0.0", ("0.0.0.0", 11434)),
     ("0.0.0.0:8080", ("0.0.0.0", 8080)), ("http://10.0.0.1:9/", ("10.0.0.1", 9)),
     (":7000", ("127.0.0.1", 7000))],
)  # fmt: skip
def test_ollama_host(value: str | None, hostport: tuple[str, int]) -> None:
    assert standin.parse_host(value) == hostport


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running stand-in on loopback with its environment."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.port = _free_port()
        self.env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{self.port}",
                    "OLLAMA_MODELS": str(tmp / "models"), **env}  # fmt: skip
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), "serve"], env=self.env,
                                     stderr=subprocess.PIPE)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(self.url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "stand-in did not start"
                time.sleep(0.05)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(SCRIPT), *args], env=self.env,
                              capture_output=True, text=True, check=False)  # fmt: skip

    def ps(self) -> list[dict]:
        return httpx.get(f"{self.url}/api/ps").json()["models"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        assert self.proc.stderr
        self.proc.stderr.close()


MakeServer = Callable[..., Server]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    servers: list[Server] = []

    def make(**env: str) -> Server:
        servers.append(Server(tmp_path, **env))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def test_cli_and_pull_list_version(make_server: MakeServer) -> None:
    s = make_server()
    assert s.cli("--version").stdout.strip() == f"ollama version is {standin.VERSION}"
    assert httpx.get(f"{s.url}/api/version").json() == {"version": standin.VERSION}
    assert httpx.get(f"{s.url}/api/tags").json() == {"models": []}
    pulled = s.cli("pull", MODEL)
    assert pulled.returncode == 0 and pulled.stdout.strip().endswith("success")
    assert MODEL in s.cli("list").stdout
    tags = httpx.get(f"{s.url}/api/tags").json()["models"]
    assert [m["name"] for m in tags] == [MODEL]
    assert httpx.get(f"{s.url}/v1/models").json()["data"][0]["id"] == MODEL
    missing = httpx.post(f"{s.url}/api/chat", json={"model": "nope", "messages": []})
    assert missing.status_code == 404 and "try pulling it first" in missing.json()["error"]


def test_keep_alive_zero_unloads_right_after_the_answer(make_server: MakeServer) -> None:
    s = make_server(OLLAMA_KEEP_ALIVE="0")
    s.cli("pull", MODEL)
    msgs = [{"role": "user", "content": "hello"}]
    r = httpx.post(f"{s.url}/api/chat", json={"model": MODEL, "messages": msgs, "stream": False})
    assert "you said: hello" in r.json()["message"]["content"]
    assert s.ps() == []
    # a request's keep_alive wins over the environment
    httpx.post(f"{s.url}/api/generate", json={"model": MODEL, "prompt": "", "keep_alive": "5m"})
    (loaded,) = s.ps()
    assert loaded["name"] == MODEL and not loaded["expires_at"].startswith("2318")
    assert MODEL in s.cli("ps").stdout


def test_duration_expiry_and_forever(make_server: MakeServer) -> None:
    s = make_server(OLLAMA_KEEP_ALIVE="24h")
    s.cli("pull", MODEL)
    r = httpx.post(f"{s.url}/api/generate", json={"model": MODEL, "prompt": "", "keep_alive": "5s"})
    assert r.json()["done_reason"] == "load"
    assert len(s.ps()) == 1  # 5 s: room for a busy machine between the load and this look
    deadline = time.monotonic() + 30
    while s.ps():  # unloaded once the duration has passed (bounded wait, no fixed sleep)
        assert time.monotonic() < deadline, "the model never unloaded after its keep_alive"
        time.sleep(0.2)
    httpx.post(f"{s.url}/api/generate", json={"model": MODEL, "prompt": "", "keep_alive": -1})
    assert s.ps()[0]["expires_at"].startswith("2318")


def test_max_loaded_models_evicts_least_recent(make_server: MakeServer) -> None:
    s = make_server(OLLAMA_MAX_LOADED_MODELS="1")
    for m in (MODEL, "llama3:8b"):
        s.cli("pull", m)
        httpx.post(f"{s.url}/api/generate", json={"model": m, "prompt": ""})
    assert [m["name"] for m in s.ps()] == ["llama3:8b"]


def test_at_the_cap_the_idle_model_with_the_shortest_keep_alive_goes(make_server: MakeServer) -> None:
    """Ollama 0.14.0 server/sched.go findRunnerToUnload: idle runners sorted ByDurationAndName
    (a negative keep-alive is the longest), not by last use: a warm model outlives a 5m one
    even when the 5m one was used last."""
    s = make_server(OLLAMA_MAX_LOADED_MODELS="2")
    warm, short, third = MODEL, "llama3:8b", "qwen2.5:0.5b"
    for m in (warm, short, third):
        s.cli("pull", m)
    httpx.post(f"{s.url}/api/generate", json={"model": warm, "prompt": "", "keep_alive": -1})
    httpx.post(f"{s.url}/api/generate", json={"model": short, "prompt": "", "keep_alive": "5m"})
    httpx.post(f"{s.url}/api/generate", json={"model": third, "prompt": "", "keep_alive": "10m"})
    assert sorted(m["name"] for m in s.ps()) == sorted([warm, third])
    httpx.post(f"{s.url}/api/generate", json={"model": short, "prompt": "", "keep_alive": "1h"})
    assert sorted(m["name"] for m in s.ps()) == sorted([warm, short])  # 10m < 1h < forever


def test_streaming_ndjson_and_openai_sse(make_server: MakeServer) -> None:
    s = make_server()
    s.cli("pull", MODEL)
    with httpx.stream("POST", f"{s.url}/api/generate",
                      json={"model": MODEL, "prompt": "stream me"}) as r:  # fmt: skip
        lines = [json.loads(x) for x in r.iter_lines() if x]
    assert lines[-1]["done"] is True and len(lines) > 2
    assert "".join(x["response"] for x in lines).endswith("you said: stream me")

    from openai import OpenAI

    client = OpenAI(base_url=f"{s.url}/v1", api_key="unused")
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi sse"}], stream=True))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.endswith("you said: hi sse")
    assert chunks[-1].choices[0].finish_reason == "stop"
    full = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert full.choices[0].message.content == standin.answer_text(MODEL, "x")


def test_bad_environment_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "OLLAMA_KEEP_ALIVE": "forever", "OLLAMA_MODELS": str(tmp_path)}
    r = subprocess.run([sys.executable, str(SCRIPT), "serve"], env=env, capture_output=True,
                       text=True, timeout=10, check=False)  # fmt: skip
    assert r.returncode == 1 and "invalid duration: 'forever'" in r.stderr


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(300, 300), (0, 0), ("0", 0), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25),
     (-1, float("inf")), ("-1m", float("inf")), (2.5, 2.5)],
)  # fmt: skip
def test_request_keep_alive_is_read_as_ollama_reads_json(value: object, seconds: float) -> None:
    """api.Duration: a number is seconds, a string a Go duration, negative = forever."""
    assert standin.parse_request_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["300", "-1", "5 minutes", "", True, None, [1]])
def test_request_keep_alive_refuses_what_ollama_refuses(value: object) -> None:
    with pytest.raises(ValueError):  # "300": time.ParseDuration wants a unit
        standin.parse_request_keep_alive(value)


def test_per_request_keep_alive_forms(make_server: MakeServer) -> None:
    s = make_server(OLLAMA_KEEP_ALIVE="0", OLLAMA_MAX_LOADED_MODELS="3")
    s.cli("pull", MODEL)
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    for keep in (600, "10m"):
        assert httpx.post(f"{s.url}/api/chat", json={**chat, "keep_alive": keep}).status_code == 200
        (m,) = s.ps()
        left = datetime.fromisoformat(m["expires_at"]).timestamp() - time.time()
        assert 500 < left <= 600, (keep, left)
    httpx.post(f"{s.url}/api/chat", json={**chat, "keep_alive": -1})
    assert s.ps()[0]["expires_at"].startswith("2318")
    httpx.post(f"{s.url}/api/chat", json={**chat, "keep_alive": 0})
    assert s.ps() == []
    bad = httpx.post(f"{s.url}/api/chat", json={**chat, "keep_alive": "300"})
    assert bad.status_code == 400 and "invalid duration" in bad.json()["error"]
    # the OpenAI-compatible endpoint has no keep_alive: the server default (0) applies
    httpx.post(f"{s.url}/api/generate", json={"model": MODEL, "keep_alive": -1})
    httpx.post(f"{s.url}/v1/chat/completions",
               json={"model": MODEL, "messages": chat["messages"], "keep_alive": -1})
    assert s.ps() == []


def test_a_busy_model_is_not_unloaded_for_another(make_server: MakeServer) -> None:
    """At OLLAMA_MAX_LOADED_MODELS the other model waits until the busy one is idle."""
    import threading

    s = make_server(OLLAMA_MAX_LOADED_MODELS="1", OLLAMA_STANDIN_ANSWER_S="1.5",
                    OLLAMA_STANDIN_LOAD_S="0.2")  # fmt: skip
    other = "llama3:8b"
    for m in (MODEL, other):
        s.cli("pull", m)
    done: dict[str, float] = {}

    def ask(model: str) -> None:
        r = httpx.post(f"{s.url}/api/generate", timeout=30,
                       json={"model": model, "prompt": "x", "stream": False})  # fmt: skip
        assert r.status_code == 200
        done[model] = time.monotonic()

    first = threading.Thread(target=ask, args=(MODEL,))
    first.start()
    deadline = time.monotonic() + 10
    while not s.ps():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = threading.Thread(target=ask, args=(other,))
    second.start()
    first.join(30)
    second.join(30)
    assert done[other] > done[MODEL]  # it waited for the busy model's answer
    assert [m["name"] for m in s.ps()] == [other]
    assert httpx.get(f"{s.url}/standin/loads").json()["loads"] == {MODEL: 1, other: 1}
    r = httpx.post(f"{s.url}/api/generate", json={"model": MODEL, "prompt": "", "stream": False})
    assert r.json()["load_duration"] >= 0.2e9  # a swap back costs a load
