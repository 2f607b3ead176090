"""Issue 21.4 across engines: a vLLM serve and two Ollama models on one card (seed 003's
mixed card), through the real gateway rendered from the inventory, to the vLLM stand-in
(``tests/standins/vllm``, the wheel the lab publishes, run as ``python -m vllm serve``) and
the Ollama stand-in (``tests/standins/ollama``), both processes on loopback.

What is shown: the gateway knows who shares the card (``/admin/upstreams``, metrics,
``hearth status``), it does not hold a vLLM request behind an Ollama one (vLLM took its
share at start: nothing swaps), and the Ollama models still take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hearth import status
from hearth.gateway.config import parse_config
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import load_inventory
from hearth.lab.artifacts import vllm_standin

from .ollama_standin import call, free_port, ollama_standin, stop
from .standins import EXAMPLE, KEYS, running, wait_until

SMALL, CODE = "llama3.2:3b", "qwen2.5-coder:1.5b"
ADMIN = {"Authorization": "Bearer admin-secret"}
MSG = [{"role": "user", "content": "hello card"}]


def _mixed_inventory(tmp: Path) -> Path:
    """example.yml with two Ollama models beside eyes' vLLM on its 16 GB card, one at a time."""
    data = yaml.safe_load(EXAMPLE.read_text())
    small = {"engine": "ollama", "context": 4096, "slots": 1, "max_loaded_models": 1}
    data["hosts"]["eyes"]["serves"] += [
        {"name": SMALL, "model": SMALL, "routes": ["small"], **small},
        {"name": CODE, "model": CODE, "routes": ["small-code"], **small},
    ]
    path = tmp / "mixed.yml"
    path.write_text(yaml.safe_dump(copy.deepcopy(data), sort_keys=False))
    return path


@contextlib.contextmanager
def vllm_process(tmp: Path, served: dict[str, Any]) -> Iterator[str]:
    """The vLLM stand-in wheel serving eyes' model with the inventory's flags on loopback."""
    with zipfile.ZipFile(vllm_standin.build_wheel(tmp / "wheel")) as wheel:
        wheel.extractall(tmp / "site")
    port = free_port()
    args = [sys.executable, "-m", "vllm", "serve", served["model"], "--served-model-name", served["name"],
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", str(served["context"]),
            "--gpu-memory-utilization", str(served["gpu_memory_utilization"]), "--quantization", "awq_marlin"]
    env = {**os.environ, "PYTHONPATH": str(tmp / "site"), "VLLM_STANDIN_READY_S": "0",
           "VLLM_STANDIN_GPU_MEMORY_GIB": "16", "VLLM_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                call(url + "/v1/models")
                break
            except (OSError, ValueError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    stop(proc)
                    raise RuntimeError(f"the vLLM stand-in did not start: {proc.stderr.read() if proc.stderr else ''}"
                                       ) from None
                time.sleep(0.05)
        yield url
    finally:
        stop(proc)


def _loopback_get(url: str, token: str | None = None) -> Any:
    """`hearth status`'s reader, refusing anything but loopback (example.yml's hosts are never asked)."""
    if not url.startswith("http://127.0.0.1:"):
        raise OSError(f"not asked in a test: {url}")
    return status._get_json(url, token)


async def test_a_card_shared_by_vllm_and_ollama(tmp_path: Path) -> None:
    inv = load_inventory(_mixed_inventory(tmp_path))
    cfg = gateway_config_from_inventory(inv, resolve=KEYS.get)
    eyes = next(s for s in yaml.safe_load(EXAMPLE.read_text())["hosts"]["eyes"]["serves"])
    token = tmp_path / "admin-token"
    token.write_text("admin-secret")
    token.chmod(0o600)
    # A 5m server keep-alive: the swapped-in model stays loaded for the checks below (with
    # KEEP_ALIVE=0 it is unloaded as it answers, and only a probe taken mid-answer saw it).
    with ollama_standin(tmp_path / "models", (SMALL, CODE), keep_alive="5m", OLLAMA_MAX_LOADED_MODELS="1",
                        OLLAMA_STANDIN_ANSWER_S="1.5", OLLAMA_STANDIN_LOAD_S="0.3") as ollama, \
            vllm_process(tmp_path, eyes) as vllm:
        data = cfg.model_dump(mode="json")
        for name, u in data["upstreams"].items():  # the card's three at their stand-ins, the rest closed
            u["base_url"] = {"eyes-0": vllm, "eyes-1": ollama, "eyes-2": ollama}.get(name, "http://127.0.0.1:9")
        data.update(listen=["127.0.0.1:0"], wol={"address": "127.0.0.1", "port": 9},
                    admin_token_file=str(token), health={"interval_s": 0.1, "timeout_s": 2},
                    clients={})  # no client keys: the requests come from loopback
        async with running(parse_config(data)) as (base, st), aiohttp.ClientSession() as s:
            ups = st.upstreams
            await wait_until(lambda: ups["eyes-0"].state == "healthy" and ups["eyes-1"].loaded is False
                             and ups["eyes-2"].loaded is False, "first probes", tries=1000)

            async def admin() -> dict[str, Any]:
                async with s.get(base + "/admin/upstreams", headers=ADMIN) as r:
                    return await r.json()

            before = await admin()
            rows = {u["name"]: u for u in before["upstreams"]}
            assert set(rows["eyes-0"]["shares_gpu_with"]) == {"eyes-1", "eyes-2"}
            assert set(rows["eyes-1"]["shares_gpu_with"]) == {"eyes-0", "eyes-2"}
            assert rows["eyes-1"]["shares_server_with"] == ["eyes-2"] and rows["eyes-0"]["shares_server_with"] == []
            assert rows["eyes-0"]["gpu"] == "eyes/gpu0" and rows["eyes-0"]["holds_gpu"] is True  # its share, from start
            assert rows["eyes-1"]["holds_gpu"] is False and rows["spark"]["shares_gpu_with"] == []
            card = before["gpus"]["eyes/gpu0"]
            assert card["upstreams"] == ["eyes-0", "eyes-1", "eyes-2"] and card["engines"] == ["ollama", "vllm"]
            assert card["holding"] == ["eyes-0"] and card["in_flight"] == 0
            assert card["planned_gb"] == cfg.gpus["eyes/gpu0"].planned_gb and card["usable_gb"] == 15.5

            async def chat(model: str) -> tuple[int, str, float]:
                async with s.post(base + "/v1/chat/completions", json={"model": model, "messages": MSG}) as r:
                    await r.read()
                    return r.status, r.headers.get("X-Hearth-Reason", ""), time.monotonic()

            slow = asyncio.create_task(chat("hearth/small"))  # Ollama answers in 1.5 s
            await wait_until(lambda: ups["eyes-1"].in_flight == 1, "the Ollama request runs")
            turn = asyncio.create_task(chat("hearth/small-code"))  # the other Ollama model: its turn comes
            await wait_until(lambda: len(ups["eyes-2"].waiters) == 1, "the second Ollama model waits")
            during = (await admin())["gpus"]["eyes/gpu0"]
            assert during["in_flight"] == 1 and during["queued"] == 1
            async with s.get(base + "/metrics") as r:
                metrics = await r.text()
            assert 'hearth_gpu_upstream_in_flight{gpu="0",host="eyes"} 1.0' in metrics
            assert 'hearth_upstream_gpu{engine="vllm",gpu="0",host="eyes",upstream="eyes-0"} 1.0' in metrics
            assert 'hearth_upstream_gpu{engine="ollama",gpu="0",host="eyes",upstream="eyes-2"} 1.0' in metrics

            code, reason, _ = await chat("hearth/vision")  # vLLM on the same card: not held
            assert code == 200 and "waited" not in reason
            assert ups["eyes-1"].in_flight == 1 and not slow.done()  # answered while Ollama still ran
            (c1, _, t1), (c2, r2, t2) = await asyncio.gather(slow, turn)
            assert c1 == c2 == 200 and "waited_for_server:eyes-2" in r2 and t2 > t1
            assert call(ollama + "/standin/loads")["loads"] == {SMALL: 1, CODE: 1}  # one swap, no thrash
            assert ups["eyes-2"].swaps == 1 and ups["eyes-0"].swaps == 0

            await wait_until(lambda: ups["eyes-2"].loaded is True and ups["eyes-1"].loaded is False,
                             "the probe sees the swap", tries=1000)
            after = (await admin())["gpus"]["eyes/gpu0"]
            assert after["holding"] == ["eyes-0", "eyes-2"] and after["in_flight"] == 0
            assert after["holding_gb"] == pytest.approx(cfg.upstreams["eyes-0"].gpu_gb + cfg.upstreams["eyes-2"].gpu_gb)

            report = await asyncio.to_thread(status.collect, inv, base, "admin-secret", get=_loopback_get,
                                             tcp=lambda a, p: False, k3s=lambda *a, **k: {
                                                 "server": None, "state": "not asked", "error": None,
                                                 "nodes": {}, "unknown_nodes": {}})
            text = status.render(report)
            line = next(x for x in text.splitlines() if x.strip().startswith("eyes/gpu0"))
            assert "eyes-0 (vllm, holds it)" in line and "eyes-2 (ollama, holds it)" in line
            assert "eyes-1 (ollama, not loaded)" in line and "0 running" in line
            assert "gpu-1/gpu0" in text  # seed 001's card: two Ollama models, shown too
            assert "hands/gpu0" not in text  # one model alone on its card: nothing shared
