"""The status page (issue 13 item 5) in a real headless browser (Debian's Chromium,
driven by Playwright for Python) against a real gateway: the page loads and shows each
upstream's state; without the admin token there are no action buttons; a wrong token
unlocks nothing; with the token a keep-warm click wakes the sleeping box (one magic
packet) and the state shown changes. The screenshot is kept as docs/status-page.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .standins import ROOT, StandinUpstream, running, wait_until
from .test_proxy import body, post
from .test_wake import PacketCatcher, setup

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright not installed (scripts/bootstrap)")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="chromium not installed (Debian package 'chromium', scripts/bootstrap)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "docs" / "status-page.png"


async def test_status_page_in_a_real_browser(tmp_path: Path) -> None:
    coder = await StandinUpstream("qwen2.5-coder:14b").start()
    coder.awake = False
    with PacketCatcher(boots=coder) as catcher:
        cfg, stands = await setup(tmp_path, catcher.port, coder)
        try:
            async with running(cfg) as (base, st), playwright_api.async_playwright() as pw:
                up = st.upstreams["windows-gpu"]
                await wait_until(lambda: up.state == "asleep", "asleep")
                await wait_until(lambda: st.upstreams["hands"].state == "healthy", "hands up")
                for i in range(6):  # some decisions and latencies to show
                    await post(base, body(f"implement {i}", model="hearth/code"))
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(20_000)
                await page.goto(base + "/status")
                for name, u in st.upstreams.items():
                    shown = await page.locator(f'tr[data-upstream="{name}"] td.state').inner_text()
                    assert shown == u.state, (name, shown, u.state)
                decisions = page.locator("h2:has-text('Last routing decisions') + table tr")
                assert await decisions.count() == 1 + 6  # the header and one row per request
                assert "hands" in await decisions.nth(1).inner_text()
                assert await page.locator("svg polyline").count() >= 1  # the sparkline of hands
                assert await page.locator("button[data-action]").count() == 0  # no token: no actions

                await page.fill("#token", "not-the-token")
                await page.click("#unlock")
                await page.locator("#lockmsg", has_text="token refused").wait_for()
                assert await page.locator("button[data-action]").count() == 0

                await page.fill("#token", "admin-secret")
                await page.click("#unlock")
                keep_warm = page.locator('button[data-action="keep-warm"][data-target="windows-gpu"]')
                await keep_warm.wait_for()
                assert await page.locator('button[data-action="drain"]').count() == len(st.cfg.routes)
                assert not catcher.packets
                await keep_warm.click()
                state = page.locator('tr[data-upstream="windows-gpu"] td.state')
                await page.wait_for_function(
                    "() => document.querySelector('tr[data-upstream=\"windows-gpu\"] td.state')"
                    ".textContent === 'healthy'", timeout=20_000)
                assert await state.inner_text() == "healthy" and up.state == "healthy"
                warm = await page.locator('tr[data-upstream="windows-gpu"] td.warm').inner_text()
                assert warm.endswith("min left"), warm
                assert len(catcher.packets) == 1
                # the token lives in the page's memory only
                assert await page.evaluate("() => localStorage.length + sessionStorage.length") == 0
                assert await page.evaluate("() => document.cookie") == ""
                SCREENSHOT.parent.mkdir(exist_ok=True)
                await page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
                await browser.close()
            if os.environ.get("HEARTH_WRITE_SCREENSHOT"):
                shutil.copyfile(tmp_path / "status.png", SCREENSHOT)
            assert (tmp_path / "status.png").stat().st_size > 10_000
        finally:
            for s in stands.values():
                await s.stop()
