"""Lab: what `make lab` prints to try the gateway works as printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hearth.lab import gateway_check
from tests.lab.test_gateway import deployed_serves

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def local_inventory(lab: Any) -> Any:
    if not lab.local:
        pytest.skip("`hearth lab try` and the banner are the local lab's")
    from hearth.deploy_data import group_defaults
    from hearth.inventory import load_inventory

    inv = load_inventory(lab.inventory, group_defaults())
    if inv.gateway is None:
        pytest.skip("no gateway in this inventory")
    return inv


def test_hearth_lab_try_answers_with_the_openai_client(lab: Any, local_inventory: Any) -> None:
    _host, upstream, serve = deployed_serves(local_inventory)[0]
    hearth = str(Path(sys.executable).with_name("hearth"))
    run = subprocess.run([hearth, "lab", "try", "--model", serve.name], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"upstream: {upstream}" in run.stdout
    assert "answer: " in run.stdout


def test_the_banners_curl_command_works_as_printed(lab: Any, local_inventory: Any) -> None:
    text = gateway_check.banner(lab.inventory)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("or with curl"))
    command = " ".join(line.strip().removesuffix("\\").strip() for line in lines[start + 1:start + 3])
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    ids = {m["id"] for m in json.loads(run.stdout)["data"]}
    assert {serve.name for _, _, serve in deployed_serves(local_inventory)} <= ids


def test_the_banner_names_the_deployed_upstreams_usable(lab: Any, local_inventory: Any) -> None:
    """`make lab` ends by saying which upstreams the gateway reports usable (issue 11 item 6)."""
    lines = gateway_check.banner(lab.inventory).splitlines()
    usable_line = next((ln for ln in lines if ln.startswith("upstreams usable: ")), None)
    assert usable_line is not None, lines
    usable = set(usable_line.removeprefix("upstreams usable: ").split(", "))
    waiting = next((ln for ln in lines if ln.startswith("not usable now: ")), "")
    for host, upstream, _serve in deployed_serves(local_inventory):
        if local_inventory.hosts[host].sleep.sleeps:  # usable while awake, named as not usable while asleep
            assert upstream in usable or upstream in waiting, (upstream, lines)
        else:
            assert upstream in usable, (upstream, lines)
