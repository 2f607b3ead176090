"""Lab: an Ollama host set up by Ollama's own install.sh is taken over, models kept.

After the session's deploys, one Ollama host is turned into what install.sh leaves
(a regular /usr/local/bin/ollama, libraries in /usr/local/lib/ollama, the models
in the ollama user's home /usr/share/ollama, install.sh's unit), with an
interrupted unpack of the current release and older installs beside it. The
ollama role must take it over on one run without failing or losing a model,
finish the unpack, prune all but the previous install, and then change nothing.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import heal as heal_configs
from hearth.configs import ollama as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.lab import cycle
from tests.lab import journal

pytestmark = [pytest.mark.lab, pytest.mark.slow_scenario]

INSTALL_SH_UNIT = """[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=/usr/local/bin/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3

[Install]
WantedBy=default.target
"""


def run_role(lab: Any, target: str) -> cycle.DeployRun:
    """roles/ollama alone on ``target``; it must succeed."""
    run = cycle.deploy(cycle.pyinfra_inventory_for(lab.inventory), cycle.REPO / "roles/ollama/main.py",
                       limit=target, timeout=300)
    assert run.ok, run.stderr_tail
    return run


@pytest.fixture(scope="module")
def taken_over(lab: Any) -> tuple[Any, Any, str, str, list[str]]:
    inv = load_inventory(lab.inventory, group_defaults())
    names = [n for n in inv.hosts if configs.ollama_serves(inv, n) and inv.hosts[n].os == "linux"]
    if not names:
        pytest.skip("no Linux host serves an Ollama model in this inventory")
    name = names[0]
    node = lab.host(name)
    current = node.file(configs.BINARY).linked_to.removesuffix("/bin/ollama")
    models_before = sorted(node.check_output(f"sudo ls -A {configs.MODELS}").split())
    assert models_before, "the session's deploy pulled no model"
    seed = " && ".join([
        "systemctl stop ollama",
        # install.sh: the release unpacked into /usr/local, the binary a regular file
        f"cp --remove-destination {current}/bin/ollama /usr/local/bin/ollama",
        f"mkdir -p {configs.INSTALL_SH_LIBS} && touch {configs.INSTALL_SH_LIBS}/libggml-base.so",
        # its user: home /usr/share/ollama, models under ~/.ollama/models
        "usermod -d /usr/share/ollama -G '' ollama",
        f"mkdir -p {Path(configs.INSTALL_SH_MODELS).parent}",
        f"mv {configs.MODELS} {configs.INSTALL_SH_MODELS}",
        "chown -R ollama:ollama /usr/share/ollama",
        f"printf %s {shlex.quote(INSTALL_SH_UNIT)} > {configs.UNIT}",
        # an interrupted unpack of the current release, older installs and archives
        f"rm -rf {current} && mkdir -p {current}.partial/bin && echo junk > {current}.partial/bin/ollama",
        f"mkdir -p {configs.INSTALLS}/0.1.0-000000000000/bin {configs.INSTALLS}/0.2.0-111111111111/bin "
        f"{configs.INSTALLS}/0.3.0-222222222222.partial",
        f"touch {configs.CACHE}/ollama-0.1.0-000000000000.tgz {configs.CACHE}/ollama-0.2.0-111111111111.tgz",
        "systemctl daemon-reload && systemctl start ollama",
    ])
    node.check_output(f"sudo sh -c {shlex.quote(seed)}")
    # install.sh's Ollama serves its models from its home (loopback, its default address)
    listed = node.check_output("sudo -u ollama env HOME=/usr/share/ollama OLLAMA_HOST=127.0.0.1:11434 "
                               "sh -c 'for i in $(seq 1 20); do ollama list && break; sleep 0.5; done'")
    assert configs.ollama_serves(inv, name)[0].model in listed
    healed = heal_configs.applies(inv, name)
    if healed:
        # a healing pass now finds that Ollama down on the overlay and restarts it while the role
        # runs: the role must stop the timer and the pass with it before it stops that Ollama (in
        # a CI run a pass started it again between the role's stop and usermod, which then failed)
        node.check_output("sudo systemctl start --no-block hearth-heal.service")
    mark = journal.cursor(node)
    run = run_role(lab, name)
    if healed:
        said = journal.after(node, mark, idents=["hearth-heal"])
        assert not [line for line in said if "unit inactive" in line], said  # what the role stopped, restarted
    assert run.totals["success"] > 0, run.changed
    return inv, node, name, current, models_before


def test_models_survive_and_are_listed(taken_over: tuple[Any, Any, str, str, list[str]]) -> None:
    inv, node, name, _, models_before = taken_over
    assert sorted(node.check_output(f"sudo ls -A {configs.MODELS}").split()) == models_before
    assert not node.file(configs.INSTALL_SH_MODELS).exists
    address = configs.listen_address(inv, name)
    listed = node.check_output(f"for i in $(seq 1 30); do OLLAMA_HOST={address} ollama list && break; sleep 0.5; done")
    for serve in configs.ollama_serves(inv, name):
        assert serve.model in listed


def test_binary_is_the_release_link_and_the_unpack_was_finished(
    taken_over: tuple[Any, Any, str, str, list[str]],
) -> None:
    _, node, _, current, _ = taken_over
    assert node.file(configs.BINARY).linked_to == f"{current}/bin/ollama"
    assert "junk" not in node.check_output(f"head -c 64 {current}/bin/ollama")
    assert not node.file(f"{current}.partial").exists
    assert not node.file(configs.INSTALL_SH_LIBS).exists
    assert node.service("ollama").is_running


def test_ollama_user_is_in_render_and_video(taken_over: tuple[Any, Any, str, str, list[str]]) -> None:
    _, node, _, _, _ = taken_over
    groups = node.user("ollama").groups
    assert "render" in groups and "video" in groups
    assert node.user("ollama").home == "/var/lib/ollama"


def test_the_healing_timer_runs_again(lab: Any, taken_over: tuple[Any, Any, str, str, list[str]]) -> None:
    inv, node, name, _, _ = taken_over
    if not heal_configs.applies(inv, name):
        pytest.skip(f"{name} has no healing timer")
    assert node.service("hearth-heal.timer").is_running


def test_only_the_previous_install_is_kept(taken_over: tuple[Any, Any, str, str, list[str]]) -> None:
    _, node, _, current, _ = taken_over
    installs = sorted(node.check_output(f"ls -A {configs.INSTALLS}").split())
    assert installs == sorted([Path(current).name, "0.2.0-111111111111"])
    cached = node.check_output(f"ls -A {configs.CACHE}").split()
    assert "ollama-0.2.0-111111111111.tgz" in cached and "ollama-0.1.0-000000000000.tgz" not in cached


def test_the_next_run_changes_nothing(lab: Any, taken_over: tuple[Any, Any, str, str, list[str]]) -> None:
    _, _, name, _, _ = taken_over
    run = run_role(lab, name)
    assert run.totals["success"] == 0, run.changed
