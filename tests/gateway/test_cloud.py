"""Cloud escalation: explicit pin + header + allowed key; sanitised; audit-logged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hearth.gateway.cloud import Sanitiser
from hearth.gateway.config import ConfigError, parse_config

from .standins import StandinUpstream, example_config, running, with_upstreams
from .test_proxy import body, post, standins, stop_all

HERMES = {"Authorization": "Bearer sk-test-hermes"}
ESC = {"X-Hearth-Escalate": "cloud"}

SECRET_TEXT = """ssh to spark at 10.77.0.70 or 192.168.1.70 (mac d8:bb:c1:30:60:12),
public 8.8.8.8 stays; key sk-abcdefghijklmnop1234 and Authorization: Bearer abcdefghijklmnopqrstu
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAA
-----END OPENSSH PRIVATE KEY-----
windows-gpu is asleep; fd12:3456::1 too"""


def test_sanitiser_replaces_and_counts() -> None:
    out, counts = Sanitiser(["spark", "windows-gpu", "eyes"]).payload(
        {"messages": [{"role": "user", "content": SECRET_TEXT}]})
    text = out["messages"][0]["content"]
    for leaked in ("10.77.0.70", "192.168.1.70", "d8:bb:c1", "sk-abcdef", "abcdefghijklmnopqrstu",
                   "b3BlbnNz", "spark", "windows-gpu", "fd12:"):
        assert leaked not in text
    assert "8.8.8.8" in text and "[PRIVATE_IP]" in text and "[HOST]" in text
    assert counts == {"private_ip": 3, "mac": 1, "api_key": 1, "bearer": 1, "pem": 1,
                      "hostname": 2}


def test_cloud_models_never_in_chains() -> None:
    data = example_config().model_dump(mode="json")
    data["routes"]["chat"]["failover"] = ["cloud/gemini/gemini-3.1-pro"]
    try:
        parse_config(data)
    except ConfigError as exc:
        assert any("cloud models never appear in chains" in e for e in exc.errors)
    else:
        raise AssertionError("a cloud model in a failover chain was accepted")


async def test_escalation_rules_sanitising_and_audit(tmp_path: Path) -> None:
    provider = await StandinUpstream("gemini-3.1-pro-preview").start()
    stands = await standins(spark="fail500")
    (tmp_path / "gemini-key").write_text("provider-secret")
    cfg = with_upstreams(example_config(), stands,
                         logs={"cloud_audit_log": str(tmp_path / "audit.jsonl")})
    data = cfg.model_dump(mode="json")
    data["clouds"]["gemini"].update(base_url=provider.url + "/v1",
                                    api_key_file=str(tmp_path / "gemini-key"))
    data["clouds"]["openrouter"]["base_url"] = "http://127.0.0.1:9/v1"
    cfg = parse_config(data)
    pinned = body(SECRET_TEXT, model="cloud/gemini/gemini-3.1-pro")
    try:
        async with running(cfg) as (base, _st):
            # no header -> 403; key without cloud -> 403; unknown alias -> 404
            assert (await post(base, pinned, HERMES))[0] == 403
            assert (await post(base, pinned, {**ESC, "Authorization":
                                              "Bearer sk-test-opencode"}))[0] == 403
            assert (await post(base, body("x", model="cloud/gemini/nope"), {**HERMES, **ESC})
                    )[0] == 404
            assert not provider.requests
            # auto-routing and failover never reach the cloud: spark (terminal) is down
            status, _h, _ = await post(base, body("architecture review"), {**HERMES, **ESC})
            assert status == 503 and not provider.requests
            status, h, raw = await post(base, pinned, {**HERMES, **ESC})
            assert status == 200, raw
            assert h["X-Hearth-Route"] == "cloud/gemini"
            sent = provider.requests[0]
            assert sent["model"] == "gemini-3.1-pro-preview"
            sent_text = sent["messages"][0]["content"]
            assert "10.77.0.70" not in sent_text and "sk-abcdef" not in sent_text
            status, _h, raw = await post(base, {**pinned, "stream": True}, {**HERMES, **ESC})
            assert status == 200 and b"[DONE]" in raw
        lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert len(lines) == 2
        a = lines[0]
        assert (a["client"], a["provider"], a["model"], a["status"]) == (
            "hermes", "gemini", "gemini-3.1-pro", 200)
        assert a["redacted"]["private_ip"] == 3 and a["redacted"]["pem"] == 1
        assert a["usage"]["total_tokens"] == 7
        assert len(a["prompt_sha256"]) == 64
        assert a["prompt_sha256"] != hashlib.sha256(SECRET_TEXT.encode()).hexdigest()
        assert "10.77.0.70" not in (tmp_path / "audit.jsonl").read_text()
    finally:
        await provider.stop()
        await stop_all(stands)
