"""``windows.reach: ssh_tunnel`` for real: the rendered tunnel command line against a real
OpenSSH server standing in for the Windows box.

A real ``sshd`` (Debian's openssh-server, scripts/bootstrap installs it and leaves the
system's sshd off) runs on 127.0.0.1 at a high port from its own temporary directory with
its own host key; its authorized_keys holds the line the windows role writes on the box.
Behind it, on loopback, the Ollama stand-in (tests/standins/ollama) plays Ollama on the
box. The test renders the gateway host's unit from an inventory whose Windows host is
that sshd, runs its ExecStart line as is (paths of the key, known_hosts, runner and
python pointed at the temporary directory), and sends a chat completion to the real
gateway, whose upstream comes from the same inventory (the tunnel's local end). Then the
box's host key changes: the same command line stops with the host named and both
fingerprints, with the exit code the unit does not restart.

Not covered here: Windows' own sshd (no Windows here) and systemd supervising the unit
(the restart settings are checked on the rendered unit in tests/unit/test_tunnel.py).
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hearth.configs import tunnel
from hearth.deploy_data import group_defaults
from hearth.gateway.config import parse_config
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import load_inventory

from .ollama_standin import free_port, ollama_standin
from .standins import running

ROOT = Path(__file__).resolve().parents[2]
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
RUNNER = ROOT / "templates" / "gateway" / "hearth-tunnel-run.py"
BOX = "windows-gpu"
MODEL = "qwen2.5-coder:14b"
KEY = "sk-tunnel-test"
DEADLINE_S = 20

pytestmark = pytest.mark.skipif(
    not Path(SSHD).exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
    reason="needs OpenSSH's sshd, ssh and ssh-keygen (Debian openssh-server, openssh-client: scripts/bootstrap)")


def keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, timeout=30)
    return path.with_name(path.name + ".pub").read_text().strip()


def fingerprint(public: str) -> str:
    digest = hashlib.sha256(base64.b64decode(public.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def wait_for(what: str, check: Any, proc: subprocess.Popen | None = None, log: Path | None = None) -> Any:
    """Poll ``check`` until it returns a truthy value, bounded by DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        with contextlib.suppress(OSError):
            result = check()
            if result:
                return result
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited {proc.returncode}: "
                                 f"{log.read_text() if log else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE_S} s. {log.read_text() if log else ''}")
        time.sleep(0.1)


def answers(port: int, path: str = "/api/version") -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
        return r.status == 200


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Box:
    """The stand-in Windows box: sshd + the Ollama stand-in, and what the deploy rendered."""

    dir: Path
    ssh_port: int
    serve_port: int
    local_port: int
    host_key: str  # public line
    inventory: Any
    argv: list[str]
    gateway_policy: dict[str, Any]

    def start_sshd(self) -> subprocess.Popen:
        log = self.dir / "sshd.log"
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                stdout=subprocess.DEVNULL, stderr=log.open("w"))
        wait_for("sshd listens", lambda: socket.create_connection(("127.0.0.1", self.ssh_port), 1).close() or True,
                 proc, log)
        return proc


def sshd_config(d: Path, port: int, user: str) -> str:
    return "\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_ed25519'}",
        f"PidFile {d / 'sshd.pid'}", f"AuthorizedKeysFile {d / 'authorized_keys'}", f"AllowUsers {user}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", "AllowTcpForwarding yes", "LogLevel VERBOSE", "",
    ])


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    user = getpass.getuser()
    ssh_port, serve_port, local_port = free_port(), free_port(), free_port()
    host_key = keygen(tmp_path / "host_ed25519", "box")
    gateway_key = keygen(tmp_path / "id_ed25519", "hearth-tunnel@k3master")
    (tmp_path / "sshd_config").write_text(sshd_config(tmp_path, ssh_port, user))

    # The inventory: the example, its sleeping 3060 now this sshd, reached by SSH tunnel;
    # its host key recorded as `hearth hostkey accept` records it (the deployer's known_hosts).
    data = yaml.safe_load((ROOT / "inventory" / "example.yml").read_text())
    recorded = tmp_path / "deployer_known_hosts"
    recorded.write_text(f"[127.0.0.1]:{ssh_port} {' '.join(host_key.split()[:2])}\n")
    data["ssh"]["known_hosts"] = str(recorded)
    gpu = data["hosts"][BOX]
    gpu.update(address="127.0.0.1", ssh_port=ssh_port, ssh_user=user)
    gpu["windows"].update(reach="ssh_tunnel", tunnel_ports={serve_port: local_port})
    gpu["serves"][0]["port"] = serve_port
    gpu["sleep"]["sleeps"] = False  # no magic packet from a test
    inv_path = tmp_path / "lab.yml"
    inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
    inv = load_inventory(inv_path, group_defaults())

    # What the deploy writes: on the box the key line, on the gateway host known_hosts and the unit
    (tmp_path / "authorized_keys").write_text(tunnel.authorized_key_line(inv, BOX, gateway_key) + "\n")
    known = tmp_path / "known_hosts"
    known.write_text(tunnel.known_hosts(inv, recorded).render())
    paths = tunnel.Paths(key=str(tmp_path / "id_ed25519"), known_hosts=str(known), runner=str(RUNNER),
                         python=sys.executable, ssh=shutil.which("ssh") or "ssh")
    unit_text = tunnel.unit(inv, BOX, paths).render()
    (line,) = [x for x in unit_text.splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart=").replace("%%", "%"))

    policy = gateway_config_from_inventory(inv, resolve=lambda ref: ref).upstreams[BOX].model_dump(mode="json")
    b = Box(tmp_path, ssh_port, serve_port, local_port, host_key, inv, argv, policy)
    with ollama_standin(tmp_path / "models", (MODEL,), port=serve_port, ready_within_s=DEADLINE_S):
        try:
            b.sshd = b.start_sshd()  # type: ignore[attr-defined]
            yield b
        finally:
            if getattr(b, "sshd", None) is not None:
                stop(b.sshd)  # type: ignore[attr-defined]


def run_tunnel(b: Box, name: str) -> tuple[subprocess.Popen, Path]:
    log = b.dir / f"{name}.log"
    proc = subprocess.Popen(b.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    return proc, log


async def test_the_gateway_answers_through_the_rendered_tunnel(box: Box) -> None:
    assert box.gateway_policy["base_url"] == f"http://127.0.0.1:{box.local_port}"  # from the inventory
    proc, log = run_tunnel(box, "tunnel")
    try:
        wait_for("the tunnel's local end answers", lambda: answers(box.local_port), proc, log)
        policy = parse_config({
            "listen": ["127.0.0.1:0"],
            "upstreams": {BOX: box.gateway_policy},
            "routes": {"coder-local": {"upstreams": [BOX]}},
            "routing": {"default_route": "coder-local"},
            "clients": {"c": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}},
            "wol": {"address": "127.0.0.1", "port": 9},
            "health": {"interval_s": 0.2, "timeout_s": 2},
        })
        ask = {"model": "hearth/coder-local", "messages": [{"role": "user", "content": "through the tunnel"}]}
        async with (running(policy) as (base, _state), aiohttp.ClientSession() as s,
                    s.post(base + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, json=ask) as r):
            body = await r.json()
            assert r.status == 200, body
            assert r.headers.get("X-Hearth-Upstream") == BOX
        assert body["choices"][0]["message"]["content"]
        assert proc.poll() is None  # the tunnel stays up
    finally:
        stop(proc)
    sshd_log = (box.dir / "sshd.log").read_text()
    assert "Accepted publickey for" in sshd_log


def test_the_key_forwards_only_to_the_serve_port_and_runs_nothing(box: Box) -> None:
    """The line the windows role writes: another port is refused, a command does not run."""
    ssh = box.argv[box.argv.index("--") + 1:]
    other = free_port()
    with socket.socket() as listener:  # something listening on the box's loopback that the key must not reach
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        target = listener.getsockname()[1]
        forbidden = [a if not a.startswith(f"127.0.0.1:{box.local_port}:") else f"127.0.0.1:{other}:127.0.0.1:{target}"
                     for a in ssh]
        proc = subprocess.Popen(forbidden, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=(box.dir / "forbidden.log").open("w"))
        try:
            wait_for("the forbidden forward listens locally",
                     lambda: socket.create_connection(("127.0.0.1", other), 1).close() or True, proc,
                     box.dir / "forbidden.log")
            with socket.create_connection(("127.0.0.1", other), 5) as s:
                s.settimeout(5)
                assert s.recv(1) == b""  # closed: the box refused the channel
            wait_for("ssh reports the refusal",
                     lambda: "administratively prohibited" in (box.dir / "forbidden.log").read_text())
        finally:
            stop(proc)
    # the same login without the forward (-N, -L) and with a command: the forced command refuses it
    command = [a for a in ssh[:-1] if a != "-N" and a != "-L" and not a.startswith("127.0.0.1:")]
    command += ["127.0.0.1", "echo", "ran"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    assert done.returncode == 1 and "ran" not in done.stdout, (done.stdout, done.stderr)


def test_a_changed_host_key_stops_the_tunnel_naming_the_host(box: Box) -> None:
    stop(box.sshd)  # type: ignore[attr-defined]
    # the box asleep: ssh fails, the runner passes ssh's code on (the unit retries)
    proc, log = run_tunnel(box, "asleep")
    assert proc.wait(DEADLINE_S) not in (0, tunnel.HOSTKEY_EXIT), log.read_text()
    # a Windows feature update made a new host key
    for suffix in ("", ".pub"):
        (box.dir / f"host_ed25519{suffix}").unlink()
    new_key = keygen(box.dir / "host_ed25519", "box-after-update")
    box.sshd = box.start_sshd()  # type: ignore[attr-defined]
    proc, log = run_tunnel(box, "changed")
    code = proc.wait(DEADLINE_S)
    text = log.read_text()
    assert code == tunnel.HOSTKEY_EXIT, text  # RestartPreventExitStatus: no silent retry
    assert "Host key for windows-gpu has changed" in text  # ssh's own words, under the inventory name
    assert (f"hearth-tunnel: the SSH host key of windows-gpu changed: known ssh-ed25519 "
            f"{fingerprint(box.host_key)}") in text
    assert f"offered {fingerprint(new_key)}" in text
    assert "hearth hostkey accept INVENTORY windows-gpu" in text
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", box.local_port), 1).close()  # nothing forwards
