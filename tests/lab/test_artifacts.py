"""The artifact server on the bridge: URL + sha256, signed apt repo, pip index, stand-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hearth.lab.harness import Lab
from hearth.lab.state import lab_root
from hearth.operations.archive import extract_command

OLLAMA_PORT = 11499  # not the role's 11434: this test must not touch what the deploy made


@pytest.fixture
def manifest(lab: Lab) -> dict:
    if not lab.local:
        pytest.skip("the artifact server is part of the local lab")
    served = httpx.get(f"{lab.spec.artifact_url}/manifest.json", timeout=10).json()
    assert served == json.loads((lab_root() / "artifacts" / "manifest.json").read_text())
    return served


def _other(lab: Lab) -> str:
    return lab.spec.machines[-1].name


def test_signed_apt_repo_installs_and_a_wrong_key_is_refused(lab: Lab, manifest: dict) -> None:
    apt = manifest["apt"]
    h = lab.host(_other(lab))
    keyring = "/usr/share/keyrings/hearth-lab-test.gpg"
    lst = "/etc/apt/sources.list.d/hearth-lab-test.list"
    only = f"-o Dir::Etc::sourcelist={lst} -o Dir::Etc::sourceparts=-"
    try:
        h.check_output(f"sudo curl -fsS -o {keyring} {apt['key_url']}")
        h.check_output(f"echo 'deb [signed-by={keyring}] {apt['url']} {apt['suite']} "
                       f"{apt['component']}' | sudo tee {lst}")  # fmt: skip
        h.check_output(f"sudo apt-get update -q {only}")
        h.check_output("sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                       f"{only} hearth-standin-probe")  # fmt: skip
        assert "stand-in probe 1.0.0" in h.check_output("hearth-standin-probe")
        # the same repository checked against another key must fail verification
        h.check_output(f"sudo cp /usr/share/keyrings/debian-archive-keyring.gpg {keyring}")
        bad = h.run(f"sudo apt-get update -q {only} -o APT::Update::Error-Mode=any")
        assert bad.rc != 0 and "NO_PUBKEY" in (bad.stdout + bad.stderr)
    finally:
        h.run("sudo DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hearth-standin-probe")
        h.run(f"sudo rm -f {keyring} {lst}")


def test_ollama_standin_tarball_by_url_and_sha256_runs_on_stock_python(
    lab: Lab, manifest: dict
) -> None:
    o = manifest["ollama"]
    name = next(m.name for m in lab.spec.machines if m.sleeps)
    h = lab.host(name)
    d = "/tmp/hearth-lab-test-ollama"
    unit = "hearth-lab-test-ollama"
    try:
        archive = f"{d}/{o['url'].rsplit('/', 1)[1]}"  # .tar.zst from 0.14 on, like the release
        h.check_output(f"rm -rf {d} && mkdir -p {d} && curl -fsS -o {archive} {o['url']}")
        h.check_output(f"echo '{o['sha256']}  {archive}' | sha256sum -c")
        h.check_output(extract_command(archive, d))
        assert h.check_output(f"head -1 {d}/bin/ollama") == "#!/usr/bin/env python3"
        h.check_output(
            f"sudo systemd-run --unit={unit} -E OLLAMA_HOST=0.0.0.0:{OLLAMA_PORT} "
            f"-E OLLAMA_KEEP_ALIVE=0 -E OLLAMA_MODELS={d}/models {d}/bin/ollama serve"
        )
        # the deploy's firewall owns inbound ports, so talk to it from the machine itself
        url = f"http://127.0.0.1:{OLLAMA_PORT}"
        h.check_output(f"for i in $(seq 100); do curl -fs {url}/ && exit 0; sleep 0.1; done; exit 1")
        version = json.loads(h.check_output(f"curl -fsS {url}/api/version"))["version"]
        assert version == o["version"]
        env = f"OLLAMA_HOST=127.0.0.1:{OLLAMA_PORT}"
        assert h.check_output(f"{env} {d}/bin/ollama --version").endswith(o["version"])
        h.check_output(f"{env} {d}/bin/ollama pull tinyllama:1.1b")
        body = json.dumps({"model": "tinyllama:1.1b", "stream": False,
                           "messages": [{"role": "user", "content": "ping"}]})  # fmt: skip
        chat = json.loads(h.check_output(f"curl -fsS {url}/api/chat -d '{body}'"))
        assert chat["message"]["content"].endswith("you said: ping")
        ps = json.loads(h.check_output(f"curl -fsS {url}/api/ps"))
        assert ps == {"models": []}  # OLLAMA_KEEP_ALIVE=0: unloaded right after the answer
    finally:
        h.run(f"sudo systemctl stop {unit}")
        h.run(f"sudo rm -rf {d}")


def test_pip_installs_from_the_pep503_index(lab: Lab, manifest: dict, tmp_path: Path) -> None:
    index = manifest["pip"]["index_url"]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    r = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "-q",
         "--index-url", index, "--trusted-host", lab.spec.host_ip, "-d", str(tmp_path),
         "hearth-standin-probe==1.0.0"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["hearth_standin_probe-1.0.0-py3-none-any.whl"]
