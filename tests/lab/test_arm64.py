"""arm64 for real: the machine is arm64, artifacts come per arch, a wrong arch is an error.

For each host whose inventory ``arch`` is arm64 (an emulated container in the lab):
its artifacts are the arm64 builds, checked against their own sha256; and a deploy
whose inventory says the wrong architecture stops, naming the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.lab.cycle import REPO
from hearth.lab.harness import Lab

pytestmark = pytest.mark.lab


def _arm64(lab: Lab) -> str:
    names = [m.name for m in lab.spec.machines if m.arch == "arm64"]
    if not names:
        pytest.skip("no arm64 host in this inventory")
    return names[0]


def test_arm64_host_gets_the_arm64_build_checked_against_its_own_sha256(lab: Lab) -> None:
    name = _arm64(lab)
    h = lab.host(name)
    base = lab.spec.artifact_url
    manifest = json.loads(h.check_output(f"curl -sSf {base}/manifest.json"))["ollama"]
    if "sha256_arm64" not in manifest:
        pytest.skip("this artifact server publishes no per-arch builds")
    arch = h.check_output("dpkg --print-architecture")
    assert arch == "arm64"
    url, sha = manifest[f"url_{arch}"], manifest[f"sha256_{arch}"]
    assert sha != manifest["sha256_amd64"]
    d = h.check_output("mktemp -d")
    try:
        h.check_output(f"curl -sSf -o {d}/release {url}")
        assert h.run(f"echo '{sha}  {d}/release' | sha256sum -c --quiet").rc == 0
        wrong = manifest["sha256_amd64"]
        assert h.run(f"echo '{wrong}  {d}/release' | sha256sum -c --quiet").rc != 0
    finally:
        h.run(f"rm -rf {d}")


def test_wrong_arch_in_the_inventory_stops_the_deploy_naming_the_host(lab: Lab, tmp_path: Path) -> None:
    name = _arm64(lab)
    import yaml

    data = yaml.safe_load(lab.inventory.read_text())
    data["hosts"][name]["arch"] = "amd64"
    inv = tmp_path / "wrong-arch.yml"
    inv.write_text(yaml.safe_dump(data))
    inv.with_suffix(".py").write_text(
        "from hearth.inventory.groups import pyinfra_groups\nglobals().update(pyinfra_groups(__file__))\n"
    )
    pyinfra = Path(sys.executable).with_name("pyinfra")
    run = subprocess.run(
        [str(pyinfra), "-y", "--limit", name, str(inv.with_suffix(".py")), str(REPO / "deploy.py")],
        capture_output=True, text=True, check=False, cwd=REPO, timeout=300,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"host {name}: the inventory says arch amd64 but the machine is arm64" in out
