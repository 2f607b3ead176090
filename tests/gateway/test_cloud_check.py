"""`hearth cloud check` against provider stand-ins on loopback: retired and
no-longer-free aliases found, same-family replacements that fit the policy proposed,
and ``--write`` changing only those lines of the inventory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hearth.cli import main
from hearth.inventory import load_inventory

from .cloud_provider_standin import StandinProvider, openrouter_model
from .standins import EXAMPLE

OPENROUTER_URL = "https://openrouter.ai/api/v1"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/openai"

LIVE = [
    # qwen3-coder's free id is still listed, but now priced: no longer free
    openrouter_model("qwen/qwen3-coder:free", 262144, prompt_usd="0.0000002",
                     completion_usd="0.0000008", retains=True),
    openrouter_model("qwen/qwen3-coder-next:free", 262144, retains=True),
    # llama-3.3-70b:free is gone; of its family only maverick is free and retains nothing
    openrouter_model("meta-llama/llama-3.3-70b-instruct", 131072, prompt_usd="0.0000001",
                     completion_usd="0.0000003"),
    openrouter_model("meta-llama/llama-3.1-405b-instruct:free", 131072, training=True),
    openrouter_model("meta-llama/llama-4-maverick:free", 1048576),
    openrouter_model("mistralai/mistral-small-3.1-24b-instruct:free", 128000),
]


def _local_copy(tmp_path: Path, openrouter: StandinProvider, gemini: StandinProvider) -> Path:
    text = EXAMPLE.read_text()
    assert OPENROUTER_URL in text and GEMINI_URL in text
    text = text.replace(OPENROUTER_URL, openrouter.base_url).replace(GEMINI_URL, gemini.base_url)
    clouds = text[text.index("\nclouds:"):text.index("\nclients:")]
    assert "https://" not in clouds  # packets stay home
    out = tmp_path / "inventory.yml"
    out.write_text(text)
    return out


async def test_cloud_check_reports_and_write_changes_only_those_lines(
        tmp_path: Path, capsys: object) -> None:
    openrouter = await StandinProvider("openrouter", models=LIVE).start()
    gemini = await StandinProvider("openai", models=[
        openrouter_model("gemini-3.1-pro-preview", 1048576)]).start()
    try:
        path = _local_copy(tmp_path, openrouter, gemini)
        before = path.read_text()
        assert await asyncio.to_thread(main, ["cloud", "check", str(path)]) == 1
        out = capsys.readouterr().out  # type: ignore[attr-defined]
        assert "cloud/gemini/gemini-3.1-pro  gemini-3.1-pro-preview  present" in out
        assert "cloud/openrouter/qwen3-coder  qwen/qwen3-coder:free  no_longer_free" in out
        assert "replace with qwen/qwen3-coder-next:free" in out
        assert "cloud/openrouter/llama-70b  meta-llama/llama-3.3-70b-instruct:free  retired" in out
        assert "replace with meta-llama/llama-4-maverick:free" in out  # 405b trains: unfit
        assert path.read_text() == before  # no --write, no change
        assert openrouter.list_calls == 1 and gemini.list_calls == 1
        assert not openrouter.requests and not gemini.requests  # read-only: no chat calls

        assert await asyncio.to_thread(main, ["cloud", "check", str(path), "--write"]) == 0
        after = path.read_text()
        old_lines, new_lines = before.split("\n"), after.split("\n")
        assert len(old_lines) == len(new_lines)
        diff = {i: (a, b) for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True))
                if a != b}
        assert sorted(b.strip() for _a, b in diff.values()) == sorted([
            "id: qwen/qwen3-coder-next:free",
            "id: meta-llama/llama-4-maverick:free",
            "context: 1048576"])
        for a, b in diff.values():  # same indentation, same key
            assert a.split(":")[0] == b.split(":")[0]
        assert "retains_prompts: true   # Alibaba Cloud; may retain" in after
        inv = load_inventory(path)
        llama = inv.clouds["openrouter"].models["llama-70b"]
        assert (llama.id, llama.context) == ("meta-llama/llama-4-maverick:free", 1048576)
        capsys.readouterr()  # type: ignore[attr-defined]
        assert await asyncio.to_thread(main, ["cloud", "check", str(path)]) == 0
        assert path.read_text() == after
    finally:
        await openrouter.stop()
        await gemini.stop()


async def test_cloud_check_unreachable_provider_is_an_error(tmp_path: Path) -> None:
    openrouter = await StandinProvider("openrouter", models=LIVE).start()
    gemini = await StandinProvider("openai").start()
    path = _local_copy(tmp_path, openrouter, gemini)
    await gemini.stop()  # its port now refuses
    try:
        assert await asyncio.to_thread(main, ["cloud", "check", str(path),
                                              "--timeout", "5"]) == 2
    finally:
        await openrouter.stop()


def test_rewrite_short_form_keeps_comment_and_touches_nothing_else() -> None:
    from hearth.gateway.cloud_check import Finding, Live, rewrite

    text = ("clouds:\n  p:\n    base_url: http://127.0.0.1:9/v1\n    models:\n"
            "      a: vendor/model-a:free   # the coder\n      b: vendor/model-b:free\n"
            "clients: {}\n")
    f = Finding("p", "a", "vendor/model-a:free", "retired",
                replacement=Live("vendor/model-a2:free"))
    new, lines = rewrite(text, [f])
    assert lines == [5]
    assert new == text.replace("      a: vendor/model-a:free   # the coder",
                               "      a: vendor/model-a2:free   # the coder")
