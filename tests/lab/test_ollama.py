"""Lab: the Ollama role on the sleeping GPU box (the Ollama stand-in, installed like the release).

The stand-in is fetched by URL and sha256 from the lab's artifact server, unpacked,
and run by the unit the role renders; KEEP_ALIVE=0 must unload the model right
after an answer (seed 000), which the stand-in's /api/ps reflects.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.configs import ollama as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory

pytestmark = pytest.mark.lab


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
        (unit,) = configs.host_files(inv, name)
        assert node.file(unit.dest).content_string == unit.render()
        assert node.service("ollama").is_enabled and node.service("ollama").is_running
        env = node.check_output("systemctl show ollama -p Environment")
        assert "OLLAMA_KEEP_ALIVE=0" in env and "OLLAMA_MAX_LOADED_MODELS=1" in env


def test_binary_came_from_the_checksummed_release(lab: Any, inv: Any, ollama_hosts: list[str]) -> None:
    settings = {**group_defaults(), **inv.settings}
    for name in ollama_hosts:
        node = lab.host(name)
        sha = settings["ollama_sha256"][inv.hosts[name].arch]
        target = node.file(configs.BINARY).linked_to
        assert target == f"/opt/ollama/{settings['ollama_version']}-{sha[:12]}/bin/ollama"
        tarball = f"/var/cache/hearth/ollama-{settings['ollama_version']}-{sha[:12]}.tgz"
        assert node.check_output(f"sha256sum {tarball}").split()[0] == sha
        assert settings["ollama_version"] in node.check_output("ollama --version")


def test_listens_on_the_overlay_only(lab: Any, inv: Any, ollama_hosts: list[str]) -> None:
    for name in ollama_hosts:
        node = lab.host(name)
        address = configs.listen_address(inv, name)
        port = address.rsplit(":", 1)[1]
        assert node.socket(f"tcp://{address}").is_listening
        assert not node.socket(f"tcp://0.0.0.0:{port}").is_listening
        assert not node.socket(f"tcp://{inv.hosts[name].address}:{port}").is_listening


def test_models_pulled_and_keep_alive_zero_unloads_after_the_answer(
    lab: Any, inv: Any, ollama_hosts: list[str]
) -> None:
    for name in ollama_hosts:
        node = lab.host(name)
        address = configs.listen_address(inv, name)
        listed = node.check_output(f"OLLAMA_HOST={address} ollama list")
        model = configs.ollama_serves(inv, name)[0].model
        assert model in listed
        body = json.dumps({"model": model, "prompt": "hello", "stream": False})
        answer = json.loads(node.check_output(f"curl -sS -m 20 http://{address}/api/generate -d '{body}'"))
        assert answer["done"] is True and answer["response"]
        loaded = json.loads(node.check_output(f"curl -sS -m 5 http://{address}/api/ps"))
        assert loaded["models"] == []  # KEEP_ALIVE=0: unloaded as soon as the answer was done
