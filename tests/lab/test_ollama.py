"""Lab: the Ollama role on every Ollama host (the Ollama stand-in, installed like the release).

The stand-in is fetched by URL and sha256 from the lab's artifact server, unpacked,
and run by the unit the role renders with the inventory's environment; each host's
keep-alive must hold after an answer (KEEP_ALIVE=0 unloads at once, seed 000), which
the stand-in's /api/ps reflects.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hearth.configs import ollama as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory

pytestmark = pytest.mark.lab


def keep_alive_seconds(value: str) -> float:
    """Seconds in an Ollama keep-alive duration ('300', '30s', '5m', '24h')."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", value).groups()  # type: ignore[union-attr]
    return float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[unit]


@pytest.fixture(scope="module")
def inv(lab: Any) -> Any:
    return load_inventory(lab.inventory, group_defaults())


@pytest.fixture(scope="module")
def ollama_hosts(inv: Any) -> list[str]:
    hosts = [name for name in inv.hosts if configs.ollama_serves(inv, name) and inv.hosts[name].os == "linux"]
    if not hosts:
        pytest.skip("no Linux host serves an Ollama model in this inventory")
    return hosts


def test_unit_is_the_rendered_one_and_running(lab: Any, inv: Any, ollama_hosts: list[str]) -> None:
    for name in ollama_hosts:
        node = lab.host(name)
        for config in configs.host_files(inv, name):  # the unit (and the resume unit on a sleeping NVIDIA box)
            assert node.file(config.dest).content_string == config.render()
        assert node.service("ollama").is_enabled and node.service("ollama").is_running
        env = node.check_output("systemctl show ollama -p Environment")
        for key, value in configs.environment(inv, name).items():
            assert f"{key}={value}" in env, (name, key, value, env)
        serve = configs.ollama_serves(inv, name)[0]
        # the server's default: the shortest keep_alive of its models (the gateway sends each its own)
        assert f"OLLAMA_KEEP_ALIVE={configs.host_keep_alive(configs.ollama_serves(inv, name))}" in env
        assert f"OLLAMA_HOST={inv.hosts[name].overlay_ip}:{serve.listen_port}" in env


def test_binary_came_from_the_checksummed_release(lab: Any, inv: Any, ollama_hosts: list[str]) -> None:
    settings = {**group_defaults(), **inv.settings}
    version = settings["ollama_version"]
    for name in ollama_hosts:
        node = lab.host(name)
        assets = configs.release_assets(version, inv.hosts[name].arch, settings["ollama_url"],
                                        settings["ollama_sha256"], configs.gpu_addons(inv, name))
        install = configs.install_dir(assets, version)
        assert node.file(configs.BINARY).linked_to == f"{install}/bin/ollama"
        assert not node.file(f"{install}.partial").exists  # unpacked aside, then renamed into place
        for asset in assets:  # in the release's own format for the version (.tar.zst from 0.14.0 on)
            assert asset.cached.endswith(configs.archive_ext(version))
            assert node.check_output(f"sha256sum {asset.cached}").split()[0] == asset.sha256
        assert version in node.check_output("ollama --version")


def test_ollama_user_may_use_the_gpus(lab: Any, ollama_hosts: list[str]) -> None:
    for name in ollama_hosts:
        groups = lab.host(name).user("ollama").groups
        assert "render" in groups and "video" in groups


def test_listens_on_the_overlay_only(lab: Any, inv: Any, ollama_hosts: list[str]) -> None:
    for name in ollama_hosts:
        node = lab.host(name)
        address = configs.listen_address(inv, name)
        port = address.rsplit(":", 1)[1]
        assert node.socket(f"tcp://{address}").is_listening
        assert not node.socket(f"tcp://0.0.0.0:{port}").is_listening
        assert not node.socket(f"tcp://{inv.hosts[name].address}:{port}").is_listening


def test_models_pulled_and_keep_alive_honoured_after_the_answer(
    lab: Any, inv: Any, ollama_hosts: list[str]
) -> None:
    """KEEP_ALIVE=0 (seed 000): unloaded as soon as the answer is done; a duration keeps it
    loaded until about then; negative keeps it loaded for good."""
    for name in ollama_hosts:
        node = lab.host(name)
        address = configs.listen_address(inv, name)
        listed = node.check_output(f"OLLAMA_HOST={address} ollama list")
        model = configs.ollama_serves(inv, name)[0].model
        assert model in listed
        body = json.dumps({"model": model, "prompt": "hello", "stream": False})
        answer = json.loads(node.check_output(f"curl -sS -m 20 http://{address}/api/generate -d '{body}'"))
        assert answer["done"] is True and answer["response"]
        asked = datetime.now(UTC)
        loaded = json.loads(node.check_output(f"curl -sS -m 5 http://{address}/api/ps"))["models"]
        keep = configs.environment(inv, name)["OLLAMA_KEEP_ALIVE"]  # a direct request: the server's default
        if keep == "0":
            assert model not in [m["name"] for m in loaded], (name, loaded)
            continue
        (row,) = [m for m in loaded if m["name"] == model]
        expires = datetime.fromisoformat(row["expires_at"].replace("Z", "+00:00"))
        if keep.startswith("-"):
            assert expires.year > 2100, row
        else:
            expected = asked + timedelta(seconds=keep_alive_seconds(keep))
            assert abs((expires - expected).total_seconds()) < 120, (name, keep, row)
