"""Gateway configs for the cloud tests: example.yml's policy with every cloud provider
forced to loopback (the openrouter one to the provider stand-in, the others to a
closed port) and a few extra clients. No test here reaches a real provider address."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hearth.gateway.config import GatewayConfig, parse_config

from .cloud_provider_standin import StandinProvider
from .standins import StandinUpstream, example_config, with_upstreams

CLOSED = "http://127.0.0.1:9/v1"
ANY_KEY = "sk-test-anything"  # seed 001: an OpenAI client that cannot add headers
ANY = {"Authorization": f"Bearer {ANY_KEY}"}
HERMES = {"Authorization": "Bearer sk-test-hermes"}  # escalation only (cloud: true)
OPENCODE = {"Authorization": "Bearer sk-test-opencode"}  # no cloud at all
PRIVATE_KEY = "sk-test-private"  # by name, aliases that retain nothing only
PROVIDER_KEY = "provider-secret-or"

ALIASES: dict[str, dict[str, Any]] = {
    "qwen3-coder": {"id": "qwen/qwen3-coder:free", "per_minute": 20, "per_day": 200,
                    "retains_prompts": True, "trains_on_prompts": False, "context": 262144},
    "llama-70b": {"id": "meta-llama/llama-3.3-70b-instruct:free", "per_minute": 20,
                  "per_day": 200, "retains_prompts": False, "trains_on_prompts": False,
                  "context": 131072, "usd_per_mtok_in": 2.0, "usd_per_mtok_out": 4.0},
    "gemma-27b": {"id": "google/gemma-3-27b-it:free", "retains_prompts": False,
                  "trains_on_prompts": False, "vision": True, "context": 131072},
}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def cloud_config(tmp_path: Path, provider: StandinProvider,
                 stands: dict[str, StandinUpstream] | None = None,
                 aliases: dict[str, dict[str, Any]] | None = None,
                 routes: dict[str, dict[str, Any]] | None = None,
                 clients: dict[str, dict[str, Any]] | None = None) -> GatewayConfig:
    """example.yml's policy, clouds on loopback, with extra clients/route settings."""
    key_file = tmp_path / "or-key"
    key_file.write_text(PROVIDER_KEY)
    cfg = with_upstreams(example_config(), stands or {},
                         logs={"cloud_audit_log": str(tmp_path / "audit.jsonl"),
                               "decision_log": str(tmp_path / "decisions.jsonl")})
    data = cfg.model_dump(mode="json")
    for prov in data["clouds"].values():  # packets stay home: no real provider address
        prov["base_url"] = CLOSED
    data["clouds"]["openrouter"].update(base_url=provider.base_url,
                                        api_key_file=str(key_file),
                                        models=aliases or ALIASES)
    (tmp_path / "admin").write_text("admin-token")
    data["admin_token_file"] = str(tmp_path / "admin")
    data["clients"]["anything"] = {
        "key_sha256": sha(ANY_KEY),
        "cloud": {"mode": "by_name", "fallback": True,
                  "aliases": ["openrouter/llama-70b", "openrouter/gemma-27b"]}}
    data["clients"]["private"] = {
        "key_sha256": sha(PRIVATE_KEY),
        "cloud": {"mode": "by_name", "no_retention": True}}
    for name, extra in (clients or {}).items():
        data["clients"].setdefault(name, {}).update(extra)
    known = {f"{p}/{a}" for p, prov in data["clouds"].items() for a in prov["models"]}
    for c in data["clients"].values():  # lists follow the aliases a test keeps
        cc = c.get("cloud")
        if isinstance(cc, dict) and cc.get("aliases") is not None:
            cc["aliases"] = [r for r in cc["aliases"] if r in known]
    for name, extra in (routes or {}).items():
        data["routes"][name].update(extra)
    for prov in data["clouds"].values():
        assert prov["base_url"].startswith("http://127.0.0.1:"), prov["base_url"]
    return parse_config(data)
