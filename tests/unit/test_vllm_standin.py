"""The vLLM stand-in as the lab publishes it: the built wheel, run as `python -m vllm`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hearth.lab.artifacts import vllm_standin

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct-AWQ"
SERVED = "qwen2.5-vl-7b-router-awq"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    wheel = vllm_standin.build_wheel(out)
    assert wheel.name == f"vllm-{vllm_standin.standin_version()}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert "vllm = vllm:main" in archive.read(f"vllm-{vllm_standin.standin_version()}.dist-info/"
                                                  "entry_points.txt").decode()
        archive.extractall(out / "site")
    return out / "site"


def run(package: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vllm", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(package), **env}, check=False)


def test_wheel_is_deterministic(tmp_path: Path) -> None:
    first = vllm_standin.build_wheel(tmp_path / "a").read_bytes()
    assert first == vllm_standin.build_wheel(tmp_path / "b").read_bytes()


def test_version(package: Path) -> None:
    assert run(package, "--version").stdout.strip() == vllm_standin.standin_version()


def test_unknown_flag_fails_like_argparse_in_vllm(package: Path) -> None:
    result = run(package, "serve", MODEL, "--enable-prefix-cache")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("vllm serve: error: unrecognized arguments: --enable-prefix-cache")


def test_bad_value_type_and_choice_fail(package: Path) -> None:
    assert "invalid _int value: 'lots'" in run(package, "serve", MODEL, "--max-model-len", "lots").stderr
    assert "invalid choice: 'fp4'" in run(package, "serve", MODEL, "--kv-cache-dtype", "fp4").stderr


def test_refuses_when_the_kv_cache_does_not_fit(package: Path) -> None:
    result = run(package, "serve", MODEL, "--max-model-len", "32768", "--gpu-memory-utilization", "0.45",
                 "--quantization", "awq_marlin", VLLM_STANDIN_READY_S="0")
    assert result.returncode == 1
    assert "larger than the available KV cache memory" in result.stderr
    bigger_card = run(package, "serve", MODEL, "--max-model-len", "32768", "--gpu-memory-utilization", "0.45",
                      "--port", "1", "--host", "256.0.0.1", VLLM_STANDIN_READY_S="0",
                      VLLM_STANDIN_GPU_MEMORY_GIB="48")
    assert "KV cache" not in bigger_card.stderr  # passes the check (then fails to bind the bogus host)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(package: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm", "serve", MODEL, "--served-model-name", SERVED, "--host", "127.0.0.1",
         "--port", str(port), "--max-model-len", "32768", "--gpu-memory-utilization", "0.78",
         "--enable-prefix-caching", "--rope-scaling", '{"type":"yarn","factor":4.0}'],
        env={**os.environ, "PYTHONPATH": str(package), "VLLM_STANDIN_READY_S": "0.5"},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        deadline = started + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert time.monotonic() - started >= 0.5  # not listening before it is "loaded"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_models_chat_and_stream(server: str) -> None:
    models = httpx.get(f"{server}/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [SERVED] and models["data"][0]["root"] == MODEL
    ask = {"model": SERVED, "messages": [{"role": "user", "content": "hello"}]}
    first = httpx.post(f"{server}/v1/chat/completions", json=ask, timeout=5).json()
    again = httpx.post(f"{server}/v1/chat/completions", json=ask, timeout=5).json()
    text = first["choices"][0]["message"]["content"]
    assert text.startswith(f"[vllm stand-in {SERVED} #") and text.endswith("you said: hello")
    assert again["choices"][0]["message"]["content"] == text  # deterministic
    with httpx.stream("POST", f"{server}/v1/chat/completions", json={**ask, "stream": True}, timeout=5) as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    wrong = httpx.post(f"{server}/v1/chat/completions", json={**ask, "model": "other"}, timeout=5)
    assert wrong.status_code == 404 and "does not exist" in wrong.json()["error"]["message"]


def families(text: str) -> dict[str, dict[str, float]]:
    """{sample name: {labels: value}} of a Prometheus text exposition, with its # TYPE lines checked."""
    out: dict[str, dict[str, float]] = {}
    types = {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        base = next(f for f in types if name == f or name.startswith(f + "_"))
        assert base, name
        out.setdefault(name, {})[labels.rstrip("}")] = float(value)
    return out


def test_metrics_have_vllm_0_11_names_and_count_requests(server: str) -> None:
    first = httpx.get(f"{server}/metrics", timeout=5)
    assert first.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    before = families(first.text)
    labels = f'engine="0",model_name="{SERVED}"'
    assert before["vllm:num_requests_running"] == {labels: 0.0}
    assert before["vllm:num_requests_waiting"] == {labels: 0.0}
    assert before["vllm:kv_cache_usage_perc"] == {labels: 0.0}
    assert "vllm:gpu_cache_usage_perc" not in before  # hidden in 0.11 unless --show-hidden-metrics-for-version 0.10
    assert before["vllm:prompt_tokens_total"] == {labels: 0.0}
    ask = {"model": SERVED, "messages": [{"role": "user", "content": "hello there"}]}
    answer = httpx.post(f"{server}/v1/chat/completions", json=ask, timeout=5).json()
    httpx.post(f"{server}/v1/chat/completions", json=ask, timeout=5)
    after = families(httpx.get(f"{server}/metrics", timeout=5).text)
    usage = answer["usage"]
    assert after["vllm:prompt_tokens_total"][labels] == 2 * usage["prompt_tokens"]
    assert after["vllm:generation_tokens_total"][labels] == 2 * usage["completion_tokens"]
    assert after["vllm:request_success_total"][labels + ',finished_reason="stop"'] == 2
    assert after["vllm:request_success_total"][labels + ',finished_reason="abort"'] == 0
    assert after["vllm:e2e_request_latency_seconds_count"][labels] == 2
    assert after["vllm:e2e_request_latency_seconds_bucket"][labels + ',le="+Inf"'] == 2
    # --enable-prefix-caching: the repeated prompt is a hit
    assert after["vllm:prefix_cache_queries_total"][labels] == 2 * usage["prompt_tokens"]
    assert after["vllm:prefix_cache_hits_total"][labels] == usage["prompt_tokens"]
    assert after["vllm:num_requests_running"][labels] == 0 and after["vllm:kv_cache_usage_perc"][labels] == 0


def test_metrics_in_flight_and_hidden_ones(package: Path) -> None:
    script = """
import json, vllm
from vllm.metrics import Stats
stats = Stats("m", 1000, False, vllm.show_hidden_metrics("0.10"))
stats.start("p", 100, 250)
during = stats.render()
stats.finish(100, 150, 250, 0.4, "stop")
print(json.dumps([during, stats.render(), [vllm.show_hidden_metrics(v) for v in ("0.10", "0.9", "0.11", None)]]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONPATH": str(package)}, check=True)
    during, after, shown = json.loads(result.stdout)
    labels = 'engine="0",model_name="m"'
    assert shown == [True, False, False, False]  # vLLM 0.11.x: only "0.10" shows the hidden ones
    assert families(during)["vllm:num_requests_running"][labels] == 1
    assert families(during)["vllm:kv_cache_usage_perc"][labels] == 0.25
    assert families(during)["vllm:gpu_cache_usage_perc"][labels] == 0.25  # the deprecated name, shown
    assert "vllm:prefix_cache_queries_total" in families(after)  # counters exist, at 0 without prefix caching
    assert families(after)["vllm:prefix_cache_queries_total"][labels] == 0
    buckets = families(after)["vllm:e2e_request_latency_seconds_bucket"]
    assert (buckets[labels + ',le="0.3"'], buckets[labels + ',le="0.5"'], buckets[labels + ',le="+Inf"']) == (0, 1, 1)


def test_reads_the_hf_token_file_as_huggingface_hub(package: Path, tmp_path: Path) -> None:
    token = tmp_path / "hf-token"
    token.write_text("hf_secret\n")
    script = "import vllm; print(vllm.read_hf_token())"
    env = {**os.environ, "PYTHONPATH": str(package)}
    read = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                          env={**env, "HF_TOKEN_PATH": str(token)}, check=True)
    assert read.stdout.strip() == "True" and "hf_secret" not in read.stdout + read.stderr
    missing = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                             env={**env, "HF_TOKEN_PATH": str(tmp_path / "none")}, check=True)
    assert missing.stdout.strip() == "False"  # no file: no token, as huggingface_hub
    unreadable = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                                env={**env, "HF_TOKEN_PATH": str(tmp_path)}, check=False)  # a directory
    assert unreadable.returncode != 0 and "hf_secret" not in unreadable.stderr


def test_the_lab_makes_the_hf_token_secret_it_references() -> None:
    from hearth.lab import keys

    lab2 = Path(__file__).resolve().parents[2] / "inventory" / "lab2.yml"
    made = keys.secret_files(lab2, Path("/var/lib/hearth-lab"))
    assert Path("/var/lib/hearth-lab/secrets/den-hf-token") in made
