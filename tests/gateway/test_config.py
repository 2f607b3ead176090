"""Policy validation, the inventory adapter, and `hearth gateway check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.cli import main
from hearth.gateway.config import ConfigError, dump_config, load_config, parse_config
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import load_inventory

from .standins import EXAMPLE, ROOT, example_config


def test_example_inventory_renders() -> None:
    cfg = example_config()
    assert cfg.upstreams["windows-gpu"].sleep.sleeps is True
    assert cfg.upstreams["windows-gpu"].sleep.mac == "d8:bb:c1:30:60:12"
    assert cfg.upstreams["windows-gpu"].base_url == "http://10.77.0.30:11434"
    assert cfg.upstreams["mouth"].slots == 3 and not cfg.upstreams["mouth"].vision
    assert cfg.routes["reasoning"].terminal and cfg.routes["reasoning"].upstreams == ["spark"]
    assert cfg.routes["vision"].spill == ["chat", "reasoning"]
    assert cfg.wol.address == "192.168.1.255" and cfg.wol.port == 9
    assert cfg.admin_token_file == "/etc/hearth/gateway/secrets/admin-token"
    assert cfg.clouds["gemini"].api_key_file == "/etc/hearth/gateway/secrets/cloud-gemini"
    assert cfg.clients["hermes"].cloud.mode == "escalation"
    assert cfg.clients["cursor"].cloud.mode == "none"
    assert len(cfg.clients["cursor"].key_sha256) == 64
    assert "10.77.0.1:4000" in cfg.listen
    assert "windows-gpu" in cfg.sanitise.hostnames


def test_lab_inventory_renders() -> None:
    inv = load_inventory(ROOT / "inventory" / "lab.yml")
    cfg = gateway_config_from_inventory(inv, resolve=lambda ref: "k")
    assert cfg.routes["chat"].terminal and cfg.routing.image_route == "vision"


def test_errors_name_key_paths() -> None:
    data = example_config().model_dump(mode="json")
    data["routes"]["code"]["spill"] = ["chatt"]
    data["routing"]["tie_break"].append("nope")
    data["upstreams"]["hands"]["slots"] = 0
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "upstreams.hands.slots: Input should be greater than or equal to 1" in e.value.errors
    data["upstreams"]["hands"]["slots"] = 1
    data["upstreams"]["windows-gpu"]["sleep"]["mac"] = None
    data["routing"]["size_promotion"]["promote"]["fast"] = ["fast"]
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    errs = e.value.errors
    assert "routes.code.spill[0]: unknown route 'chatt'" in errs
    assert "routing.tie_break[9]: unknown bucket 'nope'" in errs
    assert "upstreams.windows-gpu.sleep.mac: a sleeping upstream needs a MAC" in errs
    assert any(x.startswith("routing.size_promotion.promote.fast: needs 3") for x in errs)


def test_image_route_must_see_and_terminal_has_no_chain() -> None:
    data = example_config().model_dump(mode="json")
    data["routing"]["image_route"] = "chat"
    data["routes"]["reasoning"]["failover"] = ["chat"]
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "routing.image_route: route 'chat' has no vision upstream" in e.value.errors
    assert "routes.reasoning: a terminal route has no spill or failover chain" in e.value.errors


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "gw.yml"
    good.write_text(dump_config(example_config()))
    assert load_config(good) == example_config()
    assert main(["gateway", "check", "--config", str(good)]) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text(good.read_text().replace("default_route: reasoning", "default_route: zz"))
    assert main(["gateway", "check", "--config", str(bad)]) == 1
    assert "routing.default_route: unknown route 'zz'" in capsys.readouterr().err
    assert main(["gateway", "check", "--config", str(tmp_path / "missing.yml")]) == 1
    assert EXAMPLE.exists()
