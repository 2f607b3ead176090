"""Issue 22: model aliases and per-upstream timeouts, from the inventory to the policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.gateway.config import ConfigError, parse_config
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import InventoryError, load_inventory
from hearth.plan import plan_text


def _resolve(ref: str) -> str:
    return f"key-for-{ref}"


def _load_problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value.lines


def _aliases(**aliases: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d["model_aliases"] = {k.replace("__", "-"): v for k, v in aliases.items()}
    return change


def test_aliases_reach_the_policy_and_models_list(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(lambda d: d.update(model_aliases={
        "gpt-4o": "hearth/code", "default": "qwen3.5:9b", "smart": "hearth/auto"})))
    cfg = gateway_config_from_inventory(inv, resolve=_resolve)
    assert cfg.model_aliases == {"gpt-4o": "hearth/code", "default": "qwen3.5:9b",
                                 "smart": "hearth/auto"}
    from hearth.gateway.routing import Router
    router = Router(cfg)
    assert router.resolve_model("gpt-4o") == ("code", None)
    _route, ups = router.resolve_model("default")
    assert ups and all(cfg.upstreams[u].model == "qwen3.5:9b" for u in ups)
    assert router.resolve_model("smart") == (None, None)
    assert "model alias gpt-4o -> hearth/code" in plan_text(inv)


@pytest.mark.parametrize(("alias", "target", "why"), [
    ("hearth/code", "hearth/chat", "shadows the route aliases"),
    ("qwen3.5:9b", "hearth/code", "shadows a served model's own name"),
    ("cloud/x/y", "hearth/code", "shadows the cloud models"),
    ("gpt-4o", "hearth/nope", "unknown target 'hearth/nope'"),
    ("gpt-4o", "not-served:1b", "unknown target"),
])
def test_bad_aliases_are_refused_with_file_line_and_path(
        write_inventory: Callable[..., Path], alias: str, target: str, why: str) -> None:
    path = write_inventory(lambda d: d.update(model_aliases={alias: target}))
    lines = _load_problems(path)
    hit = [ln for ln in lines if f"model_aliases.{alias}:" in ln]
    assert hit and why in hit[0], lines
    assert hit[0].startswith(f"{path}:") and hit[0].split(":")[1].isdigit()


def test_alias_pointing_at_an_alias_is_refused(write_inventory: Callable[..., Path]) -> None:
    lines = _load_problems(write_inventory(lambda d: d.update(
        model_aliases={"a": "hearth/code", "b": "a"})))
    assert any("model_aliases.b:" in ln and "another alias" in ln for ln in lines)


def test_gateway_policy_refuses_shadowing_aliases_itself() -> None:
    base = {"upstreams": {"u": {"engine": "ollama", "base_url": "http://127.0.0.1:9",
                                "model": "m:1b"}},
            "routes": {"r": {"upstreams": ["u"]}}, "routing": {"default_route": "r"}}
    parse_config({**base, "model_aliases": {"nice": "hearth/r"}})
    with pytest.raises(ConfigError) as err:
        parse_config({**base, "model_aliases": {"m:1b": "hearth/r", "hearth/x": "m:1b"}})
    assert any(e.startswith("model_aliases.m:1b: shadows") for e in err.value.errors)
    assert any(e.startswith("model_aliases.hearth/x: shadows") for e in err.value.errors)


def _timeouts(d: dict[str, Any]) -> None:
    d["gateway"]["timeouts"] = {"connect_s": 3, "first_byte_s": 60}
    d["hosts"]["spark"]["timeouts"] = {"probe_s": 8, "first_byte_s": 30}  # seed 003's remote
    d["hosts"]["spark"]["serves"][0]["timeouts"] = {"total_s": 300}


def test_timeouts_render_into_the_policy_and_plan(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(_timeouts))
    cfg = gateway_config_from_inventory(inv, resolve=_resolve)
    assert (cfg.timeouts.connect_s, cfg.timeouts.first_byte_s) == (3, 60)
    assert cfg.timeouts.total_s == 900  # not set: the default
    spark = cfg.upstreams["spark"].timeouts
    assert (spark.probe_s, spark.first_byte_s, spark.total_s, spark.connect_s) == (8, 30, 300,
                                                                                   None)
    assert cfg.upstreams["hands"].timeouts.first_byte_s is None
    from hearth.gateway.state import Policy
    merged = Policy.build(cfg).timeouts
    assert (merged["spark"].connect_s, merged["spark"].first_byte_s,
            merged["spark"].total_s) == (3, 30, 300)
    assert merged["hands"].first_byte_s == 60
    text = plan_text(inv)
    assert "timeouts (default): connect 3s, first-byte 60s, idle 60s, total 900s" in text
    assert "timeouts spark (qwen3.6-35b-a3b-fp8): connect 3s, first-byte 30s" in text
    assert "probe 8s" in text


def test_timeouts_out_of_order_or_unknown_are_refused(
        write_inventory: Callable[..., Path]) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["hosts"]["spark"]["serves"][0]["timeouts"] = {"first_byte_s": 1000, "total_s": 100}
    lines = _load_problems(write_inventory(bad))
    assert any("hosts.spark.serves[0].timeouts.first_byte_s:" in ln and "total_s" in ln
               for ln in lines), lines

    def typo(d: dict[str, Any]) -> None:
        d["hosts"]["spark"]["timeouts"] = {"conect_s": 3}
    assert any("conect_s" in ln for ln in _load_problems(write_inventory(typo)))

    def negative(d: dict[str, Any]) -> None:
        d["gateway"]["timeouts"] = {"connect_s": -1}
    assert any("gateway.timeouts.connect_s" in ln
               for ln in _load_problems(write_inventory(negative)))


def _lan(**lan: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d["lan"]["admin_cidr"] = "192.168.1.0/26"
        d["gateway"]["lan"] = lan
    return change


def _gateway_rules(text: str, port: int) -> list[str]:
    """The gateway port's rules for the overlay and the LAN (a k3s node's rule for its
    own pods, on the pod interfaces from the cluster CIDR, is left out)."""
    return [ln.strip() for ln in text.splitlines()
            if f"tcp dport {port} accept" in ln and 'from pods"' not in ln]


def test_lan_exposure_is_off_by_default(write_inventory: Callable[..., Path]) -> None:
    from hearth.configs import firewall
    inv = load_inventory(write_inventory())
    cfg = gateway_config_from_inventory(inv, resolve=_resolve)
    assert cfg.listen == ["127.0.0.1:4000", "10.77.0.1:4000"]
    assert cfg.keyless_networks is None
    (rule,) = _gateway_rules(firewall.ruleset(inv, "k3master").render(), 4000)
    assert rule.startswith('iifname "wg0" ip saddr 10.77.0.0/24 ')


def test_lan_exposure_binds_lan_and_opens_admin_lan_only(
        write_inventory: Callable[..., Path]) -> None:
    from hearth.configs import firewall
    inv = load_inventory(write_inventory(_lan(listen=True)))
    cfg = gateway_config_from_inventory(inv, resolve=_resolve)
    assert cfg.listen == ["127.0.0.1:4000", "10.77.0.1:4000", "192.168.1.10:4000"]
    assert [str(n) for n in cfg.admin_networks or []] == ["127.0.0.0/8", "::1/128",
                                                          "10.77.0.0/24"]
    assert cfg.keyless_networks == cfg.admin_networks  # the LAN needs a key everywhere
    rules = _gateway_rules(firewall.ruleset(inv, "k3master").render(), 4000)
    assert len(rules) == 2
    assert rules[1].startswith("ip saddr 192.168.1.0/26 tcp dport 4000 accept")  # admin LAN
    assert not any("0.0.0.0/0" in r for r in rules)
    assert "listen on the LAN: 192.168.1.10:4000, open to 192.168.1.0/26" in plan_text(inv)
    assert _gateway_rules(firewall.ruleset(inv, "eyes").render(), 4000) == []
    listed = load_inventory(write_inventory(_lan(listen=True, allow=["192.168.1.64/27",
                                                                    "192.168.1.200/32"])))
    rules = _gateway_rules(firewall.ruleset(listed, "k3master").render(), 4000)
    assert rules[1].startswith("ip saddr { 192.168.1.64/27, 192.168.1.200/32 } tcp dport 4000")


def test_lan_exposure_refusals(write_inventory: Callable[..., Path]) -> None:
    lines = _load_problems(write_inventory(_lan(listen=True, admin_api=True)))
    assert any("gateway.lan.admin_api:" in ln and "never exposed" in ln for ln in lines)

    def no_clients(d: dict[str, Any]) -> None:
        _lan(listen=True)(d)
        d["clients"] = {}
    lines = _load_problems(write_inventory(no_clients))
    assert any("gateway.lan.listen:" in ln and "client keys" in ln for ln in lines)
    lines = _load_problems(write_inventory(_lan(listen=True, allow=[])))
    assert any("gateway.lan.allow:" in ln for ln in lines)
    lines = _load_problems(write_inventory(_lan(listen=True, allow=["not-a-cidr"])))
    assert any("gateway.lan.allow" in ln for ln in lines)
