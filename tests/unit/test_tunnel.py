"""``windows.reach: ssh_tunnel``: the gateway host's tunnel unit, the key line on the box,
the known_hosts from the recorded key, the upstream URL, the plan and the validation.

The tunnel itself runs for real against an OpenSSH server in tests/gateway/test_tunnel_sshd.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from paramiko.hostkeys import HostKeys
from pyinfra.context import ctx_host, ctx_state

from hearth.configs import gateway, tunnel
from hearth.configs import windows as windows_configs
from hearth.deploy_data import group_defaults
from hearth.gateway.from_inventory import gateway_config_from_inventory
from hearth.inventory import InventoryError, load_inventory
from hearth.operations import ssh
from hearth.operations.windows import ssh_keys
from hearth.plan import plan_text
from tests.unit.windows_support import FakeHost, parse_problems, scripts

BOX_KEY_B64 = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
GW_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5cQ3ZQ0Nw1fT1vYl0bq2aTQhL0qZ6vF6r8KxN1m2s+ hearth-tunnel@k3master"


def tunneled(known_hosts: Path, hashed: bool = False, **windows: Any) -> Callable[[dict[str, Any]], None]:
    """windows-gpu reached by SSH tunnel as `gamer`, its host key recorded in ``known_hosts``."""
    if hashed:
        known_hosts.write_text(f"{HostKeys.hash_host('192.168.1.30')} ssh-ed25519 {BOX_KEY_B64}\n")
    else:
        known_hosts.write_text(f"192.168.1.30 ssh-ed25519 {BOX_KEY_B64}\n192.168.1.40 ssh-ed25519 {BOX_KEY_B64}\n")

    def change(data: dict[str, Any]) -> None:
        data["ssh"]["known_hosts"] = str(known_hosts)
        box = data["hosts"]["windows-gpu"]
        box["ssh_user"] = "gamer"
        box["windows"] = {**box["windows"], "reach": "ssh_tunnel", **windows}

    return change


@pytest.fixture
def inv(write_inventory: Callable[..., Path], tmp_path: Path) -> Any:
    return load_inventory(write_inventory(tunneled(tmp_path / "known_hosts")), group_defaults())


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load_inventory(path, group_defaults())
    return exc.value.lines


def exec_start(text: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart=").replace("%%", "%"))


# --- the unit on the gateway host --------------------------------------------------------

def test_one_unit_per_box_as_hearth_tunnel_with_strict_host_keys(inv: Any) -> None:
    assert tunnel.tunnel_hosts(inv) == ["windows-gpu"]
    unit = tunnel.unit(inv, "windows-gpu")
    assert unit.dest == "/etc/systemd/system/hearth-tunnel-windows-gpu.service"
    text = unit.render()
    lines = text.splitlines()
    for expected in ("User=hearth-tunnel", "Group=hearth-tunnel", "Restart=always", "RestartSec=5",
                     "StartLimitIntervalSec=0", "RestartPreventExitStatus=78",
                     "After=network-online.target"):
        assert expected in lines, expected
    argv = exec_start(text)
    assert argv[:5] == ["/usr/bin/python3", "/usr/local/libexec/hearth-tunnel", "windows-gpu",
                        "/etc/hearth/tunnel/known_hosts", "--"]
    ssh_argv = argv[5:]
    assert ssh_argv[:6] == ["/usr/bin/ssh", "-N", "-T", "-F", "/dev/null", "-p"]
    options = dict(o.split("=", 1) for o in ssh_argv[ssh_argv.index("-o") :: 1] if "=" in o and not o.startswith("-"))
    assert options["StrictHostKeyChecking"] == "yes" and options["BatchMode"] == "yes"
    assert options["ExitOnForwardFailure"] == "yes"
    assert options["UserKnownHostsFile"] == "/etc/hearth/tunnel/known_hosts"
    assert options["GlobalKnownHostsFile"] == "/dev/null"
    assert options["HostKeyAlias"] == "windows-gpu"  # ssh's own messages name the inventory host
    assert options["IdentityFile"] == "/var/lib/hearth-tunnel/id_ed25519"
    assert options["ServerAliveInterval"] == "10" and options["ServerAliveCountMax"] == "3"
    assert "accept-new" not in text and "StrictHostKeyChecking=no" not in text
    assert ssh_argv[ssh_argv.index("-l") + 1] == "gamer" and ssh_argv[ssh_argv.index("-p") + 1] == "22"
    assert [ssh_argv[i + 1] for i, a in enumerate(ssh_argv) if a == "-L"] == ["127.0.0.1:31434:127.0.0.1:11434"]
    assert ssh_argv[-1] == "192.168.1.30"


def test_the_tunnel_unit_is_hardened_like_the_gateway(inv: Any, tmp_path: Path) -> None:
    _, gateway_unit = gateway.host_files(inv, "k3master")
    hardening = {line.split("=", 1)[0] + "=" + line.split("=", 1)[1] for line in gateway_unit.render().splitlines()
                 if re.match(r"^(No|Capability|Ambient|Protect|Private|Device|Restrict|Lock|Memory|Remove|Keyring|"
                             r"SystemCall|UMask)", line)}
    text = tunnel.unit(inv, "windows-gpu").render().splitlines()
    assert hardening and hardening <= set(text), sorted(hardening - set(text))
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    path = tmp_path / "hearth-tunnel-windows-gpu.service"
    path.write_text("\n".join(text) + "\n")
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for hearth-tunnel-windows-gpu\.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0, proc.stdout


def test_every_serve_port_is_forwarded_and_tunnel_ports_choose_the_local_end(
        write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        tunneled(tmp_path / "kh", tunnel_ports={11434: 40111})(data)
        data["hosts"]["windows-gpu"]["serves"].append(
            {"name": "llama-3.2-3b", "engine": "lmstudio", "model": "llama-3.2-3b", "arch": "llama-3.2-3b",
             "quant": "Q4_K_M", "context": 4096, "routes": ["lm-local"], "port": 11500})
        data["hosts"]["windows-gpu"]["gpus"][0]["vram_gb"] = 24

    inv = load_inventory(write_inventory(change), group_defaults())
    assert tunnel.forwards(inv, "windows-gpu") == [(40111, 11434), (31500, 11500)]
    argv = exec_start(tunnel.unit(inv, "windows-gpu").render())
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-L"] == [
        "127.0.0.1:40111:127.0.0.1:11434", "127.0.0.1:31500:127.0.0.1:11500"]
    line = tunnel.authorized_key_line(inv, "windows-gpu", GW_PUB)
    assert line.startswith('restrict,port-forwarding,permitopen="127.0.0.1:11434",permitopen="127.0.0.1:11500",'
                           'command="exit 1" ssh-ed25519 ')


# --- the key line on the box ------------------------------------------------------------

def test_the_key_line_allows_forwarding_to_the_serve_port_only(inv: Any) -> None:
    line = tunnel.authorized_key_line(inv, "windows-gpu", GW_PUB)
    key = GW_PUB.split()[1]
    assert line == (f'restrict,port-forwarding,permitopen="127.0.0.1:11434",command="exit 1" ssh-ed25519 {key} '
                    "hearth-tunnel@k3master")
    with pytest.raises(ValueError, match="not an OpenSSH public key"):
        tunnel.authorized_key_line(inv, "windows-gpu", "garbage")


ADMIN_KEYS = windows_configs.ADMIN_KEYS
DEPLOY = "ssh-ed25519 AAAAdeploy hearth"


def test_tunnel_key_adds_the_line_then_changes_nothing(inv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh_keys, "_gateway_key", lambda gateway, path: GW_PUB)
    monkeypatch.setattr("hearth.inventory.load_cached", lambda path: inv)
    line = tunnel.authorized_key_line(inv, "windows-gpu", GW_PUB)
    args = {"inventory": "x", "host_name": "windows-gpu", "path": ADMIN_KEYS}
    (first,) = scripts(ssh_keys.tunnel_key, {"TextLines": [DEPLOY]}, **args)
    assert not parse_problems(first)
    assert "icacls.exe" in first  # the file keeps the ACL sshd requires
    assert scripts(ssh_keys.tunnel_key, {"TextLines": [DEPLOY, line]}, **args) == []
    # a stale line (other ports, an old key) is replaced, the deploy key stays
    (replaced,) = scripts(ssh_keys.tunnel_key, {"TextLines": [DEPLOY, line.replace("11434", "9999")]}, **args)
    assert _written(replaced) == f"{DEPLOY}\n{line}\n"


def test_removing_ssh_tunnel_removes_the_line(write_inventory: Callable[..., Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = load_inventory(write_inventory(), group_defaults())
    monkeypatch.setattr("hearth.inventory.load_cached", lambda path: overlay)
    monkeypatch.setattr(ssh_keys, "_gateway_key", lambda gateway, path: pytest.fail("not read when not tunneled"))
    old = f'restrict,port-forwarding,permitopen="127.0.0.1:11434" {GW_PUB}'
    args = {"inventory": "x", "host_name": "windows-gpu", "path": ADMIN_KEYS}
    (removed,) = scripts(ssh_keys.tunnel_key, {"TextLines": [DEPLOY, old]}, **args)
    assert _written(removed) == f"{DEPLOY}\n"
    assert scripts(ssh_keys.tunnel_key, {"TextLines": [DEPLOY]}, **args) == []
    assert scripts(ssh_keys.tunnel_key, {"TextLines": None}, **args) == []


def test_a_missing_gateway_key_is_an_error_when_executing(inv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyinfra.api import OperationError

    monkeypatch.setattr(ssh_keys, "_gateway_key", lambda gateway, path: None)
    monkeypatch.setattr("hearth.inventory.load_cached", lambda path: inv)
    args = {"inventory": "x", "host_name": "windows-gpu", "path": ADMIN_KEYS}
    assert len(scripts(ssh_keys.tunnel_key, {"TextLines": [DEPLOY]}, **args)) == 1  # planning: a change
    with pytest.raises(OperationError, match="no tunnel key on the gateway host k3master"):
        scripts(ssh_keys.tunnel_key, {"TextLines": [DEPLOY]}, executing=True, **args)


def _written(script: str) -> str:
    import base64

    (data,) = re.findall(r"FromBase64String\('([^']+)'\)", script)
    return base64.b64decode(data).decode()


# --- the key pair on the gateway host ---------------------------------------------------

def test_the_key_pair_is_made_once_on_the_gateway_host() -> None:
    def commands(facts: dict[str, Any]) -> list[str]:
        fake = FakeHost(facts)
        with ctx_host.use(fake), ctx_state.use(SimpleNamespace(is_executing=False)):
            return [c.get_raw_value() for c in ssh.keypair._inner(path=tunnel.KEY, user=tunnel.USER,
                                                                  comment="hearth-tunnel@k3master")]

    (made,) = commands({"File": None})
    assert "ssh-keygen -q -t ed25519 -N '' -C hearth-tunnel@k3master" in made
    assert "umask 077" in made and "chmod 0600 /var/lib/hearth-tunnel/id_ed25519.new" in made
    assert "chown hearth-tunnel:" in made
    assert commands({"File": {"mode": 600}}) == []


# --- known_hosts from the recorded key --------------------------------------------------

@pytest.mark.parametrize("hashed", [False, True])
def test_known_hosts_holds_the_recorded_key_under_the_inventory_name(
        write_inventory: Callable[..., Path], tmp_path: Path, hashed: bool) -> None:
    inv = load_inventory(write_inventory(tunneled(tmp_path / "kh", hashed=hashed)), group_defaults())
    text = tunnel.known_hosts(inv).render()
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        f"windows-gpu ssh-ed25519 {BOX_KEY_B64}"]


def test_no_recorded_key_refuses_the_deploy_naming_the_host(write_inventory: Callable[..., Path],
                                                             tmp_path: Path) -> None:
    known = tmp_path / "kh"
    path = write_inventory(tunneled(known))
    known.write_text("")
    inv = load_inventory(path, group_defaults())
    (missing,) = tunnel.missing_host_keys(inv)
    assert missing.startswith("hosts.windows-gpu: reach ssh_tunnel needs the box's SSH host key in")
    assert "hearth hostkey accept INVENTORY windows-gpu" in missing
    with pytest.raises(tunnel.TunnelKeyError):
        tunnel.known_hosts(inv)
    # the deploy stops while pyinfra reads the inventory: before any host is touched
    from hearth.inventory.groups import pyinfra_groups

    py = path.with_suffix(".py")
    py.write_text("")
    with pytest.raises(SystemExit) as exc:
        pyinfra_groups(str(py))
    assert exc.value.code == 2
    assert "windows-gpu" in plan_text(inv) and "NOT recorded" in plan_text(inv)


# --- the gateway, the plan, render, the box's firewall ----------------------------------

def test_the_gateway_upstream_is_the_local_end_and_the_box_is_still_woken(inv: Any) -> None:
    cfg = gateway_config_from_inventory(inv, resolve=lambda ref: ref)
    up = cfg.upstreams["windows-gpu"]
    assert up.base_url == "http://127.0.0.1:31434"
    assert up.sleep.sleeps and up.sleep.mac == "d8:bb:c1:30:60:12"
    assert cfg.upstreams["mouth"].base_url == "http://10.77.0.50:1234"  # the overlay box: unchanged


def test_plan_shows_the_reach(inv: Any) -> None:
    text = plan_text(inv)
    section = text[text.index("Windows reach"):]
    row = next(line for line in section.splitlines() if line.startswith("windows-gpu"))
    assert "ssh_tunnel" in row and "hearth-tunnel-windows-gpu.service as gamer@192.168.1.30:22" in row
    assert "127.0.0.1:31434 -> 11434" in row and "ssh-ed25519" in row
    assert re.search(r"^mouth\s+overlay\s+10\.77\.0\.50 \(WireGuard\)", section, re.M)


def test_render_lists_the_tunnel_files_on_the_gateway_host(inv: Any) -> None:
    from hearth.commands import host_files

    dests = [f.dest for f in host_files(inv, "k3master")]
    assert "/etc/systemd/system/hearth-tunnel-windows-gpu.service" in dests
    assert "/etc/hearth/tunnel/known_hosts" in dests
    assert not [f for f in host_files(inv, "eyes") if "tunnel" in f.dest]


def test_the_box_admits_ssh_from_the_gateway_host(write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        tunneled(tmp_path / "kh")(data)
        data["lan"]["admin_cidr"] = "192.168.1.64/26"  # the gateway host (.10) is outside it

    inv = load_inventory(write_inventory(change), group_defaults())
    gw = inv.hosts["k3master"].address
    (ssh_rule,) = windows_configs.firewall_rules(inv, "windows-gpu")
    assert ssh_rule.remote == ("192.168.1.64/26", "10.77.0.0/24", f"{gw}/32")


# --- validation -------------------------------------------------------------------------

def test_validation_needs_the_windows_account(write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        tunneled(tmp_path / "kh")(data)
        del data["hosts"]["windows-gpu"]["ssh_user"]

    (line,) = problems(path := write_inventory(change))
    assert line.startswith(f"{path}:") and ": hosts.windows-gpu.ssh_user: reach ssh_tunnel: name the Windows" in line


@pytest.mark.parametrize(("ports", "expected"), [
    ({11434: 4000}, "hosts.windows-gpu.windows.tunnel_ports.11434: the tunnel's local port 4000 (to serve port "
                    "11434) is taken on the gateway host k3master by gateway.port"),
    ({11434: 22}, "is taken on the gateway host k3master by hosts.k3master SSH"),
    ({11434: 6443}, "by k3s"),
    ({11434: 4101}, "by the CUDA recovery trigger"),
    ({11435: 40000}, "hosts.windows-gpu.windows.tunnel_ports.11435: 11435 is not a port this host serves on (11434)"),
])
def test_validation_refuses_a_local_port_that_is_taken(write_inventory: Callable[..., Path], tmp_path: Path,
                                                       ports: dict[int, int], expected: str) -> None:
    lines = problems(write_inventory(tunneled(tmp_path / "kh", tunnel_ports=ports)))
    assert any(expected in line for line in lines), lines


def test_validation_refuses_two_tunnels_on_one_local_port(write_inventory: Callable[..., Path],
                                                          tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        tunneled(tmp_path / "kh")(data)
        mouth = data["hosts"]["mouth"]
        mouth.update(ssh_user="gamer", windows={"reach": "ssh_tunnel", "tunnel_ports": {1234: 31434}})

    (line,) = problems(write_inventory(change))
    assert ("hosts.windows-gpu.windows.reach: the tunnel's local port 31434 (to serve port 11434) is taken on "
            "the gateway host k3master by the tunnel to hosts.mouth (serve port 1234)") in line


def test_validation_refuses_tunnel_ports_without_a_tunnel_and_a_default_past_65535(
        write_inventory: Callable[..., Path], tmp_path: Path) -> None:
    path = write_inventory(lambda d: d["hosts"]["mouth"].update(windows={"tunnel_ports": {1234: 31234}}))
    (line,) = problems(path)
    assert ("hosts.mouth.windows.tunnel_ports: only for reach: ssh_tunnel "
            "(this host is reached over the overlay)") in line

    def high(data: dict[str, Any]) -> None:
        tunneled(tmp_path / "kh")(data)
        data["hosts"]["windows-gpu"]["serves"][0]["port"] = 50000

    (line,) = problems(write_inventory(high))
    assert "hosts.windows-gpu.windows.reach: the tunnel's local port for serve port 50000 would be 70000" in line
