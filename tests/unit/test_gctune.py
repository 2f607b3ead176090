"""hearth.gateway.gctune: the serving process's start-up heap is frozen out of the
collector, the generation-0 threshold raised, and a reload re-settles it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from hearth.gateway import gctune
from hearth.gateway.config import GatewayConfig
from hearth.gateway.state import GatewayState


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_the_heap_and_raises_gen0(restore_gc: None) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    _, g1, g2 = gc.get_threshold()
    gctune.settle()
    assert gc.get_freeze_count() > 1000  # the interpreter's and pytest's own objects
    assert gc.get_threshold() == (gctune.GEN0_THRESHOLD, g1, g2)
    assert gctune.GEN0_THRESHOLD > 700  # CPython's default


def test_settle_again_collects_cycles_that_were_frozen(restore_gc: None) -> None:
    import weakref

    c = _Cycle()
    ref = weakref.ref(c)
    gctune.settle()  # c is alive: frozen with everything else
    del c
    gc.collect()
    assert ref() is not None  # frozen objects are never collected...
    gctune.settle()  # ...until the next settle unfreezes first
    assert ref() is None


def test_a_reload_runs_the_after_reload_hooks() -> None:
    cfg = GatewayConfig.model_validate({
        "upstreams": {"a": {"engine": "vllm", "base_url": "http://127.0.0.1:9", "model": "m"}},
        "routes": {"chat": {"upstreams": ["a"]}}, "routing": {"default_route": "chat"}})
    calls: list[int] = []

    async def go() -> None:
        st = GatewayState(cfg)
        st.after_reload.append(lambda: calls.append(1))
        try:
            await st.reload(cfg)
        finally:
            await st.close()

    asyncio.run(go())
    assert calls == [1]


def test_the_serving_process_settles_once_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hearth gateway serve`` settles the GC after it binds, and registers the reload hook."""
    import os
    import signal

    from hearth.gateway import cli

    cfg = GatewayConfig.model_validate({
        "listen": ["127.0.0.1:0"],
        "upstreams": {"a": {"engine": "vllm", "base_url": "http://127.0.0.1:9", "model": "m"}},
        "routes": {"chat": {"upstreams": ["a"]}}, "routing": {"default_route": "chat"}})
    seen: list[str] = []

    def fake_settle() -> None:
        seen.append("settle")
        # the gateway is up: ask it to stop, as systemd would
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(gctune, "settle", fake_settle)
    assert asyncio.run(asyncio.wait_for(cli._run(cfg, "", None), 30)) == 0
    assert seen == ["settle"]
