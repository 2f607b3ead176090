"""The one inventory: parsing, and every validation error the foundation promises."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.inventory import InventoryError, SecretError, load_inventory, resolve_secret
from hearth.inventory.groups import build_groups

REPO = Path(__file__).resolve().parents[2]


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value.lines


def test_example_inventory_loads_with_every_lab_part() -> None:
    inv = load_inventory(REPO / "inventory" / "example.yml")
    assert inv.hosts["windows-gpu"].sleep.sleeps
    assert inv.hosts["windows-gpu"].serves[0].keep_alive == "0"
    assert inv.hosts["mouth"].serves[0].slots == 3
    assert inv.routing is not None and inv.routing.routes["reasoning"].terminal
    assert [h for h in inv.hosts if inv.hosts[h].arch == "arm64"] == ["phone1", "phone2", "phone3", "spark"]
    assert inv.routing.buckets["coding"].keywords["refactor"] == 2
    assert inv.routing.buckets["vision"].keywords["screenshot"] == 1  # list form: weight 1


def test_lab_inventory_loads() -> None:
    inv = load_inventory(REPO / "inventory" / "lab.yml")
    assert set(inv.hosts) == {"lab-cp", "lab-vllm", "lab-ollama", "lab-agent", "lab-nas"}
    assert inv.linux_hosts() == ["lab-cp", "lab-vllm", "lab-ollama", "lab-agent"]  # lab-nas: managed: false


def test_pyinfra_groups_per_role_and_strict_host_keys() -> None:
    inv = load_inventory(REPO / "inventory" / "example.yml")
    groups = build_groups(inv, REPO / "inventory" / "example.yml")
    names = {group: [name for name, _ in entries] for group, entries in groups.items()}
    assert names["k3s_servers"] == ["k3master"]
    assert names["gateway"] == ["k3master"]
    assert names["vllm"] == ["eyes", "hands", "spark"]
    # Windows hosts are deployed by the windows role over SSH + PowerShell, in their own group
    assert names["windows"] == ["mouth", "windows-gpu"]
    assert "mouth" not in names["linux"] and "windows-gpu" not in names["linux"]
    assert names["sleepers"] == ["windows-gpu"]
    windows = dict(groups["windows"])["windows-gpu"]
    # No `sh -c` wrapper and no sudo: the commands are PowerShell, the user an administrator
    assert windows["_shell_executable"] is None and "_sudo" not in windows
    assert windows["ssh_strict_host_key_checking"] == "yes"
    assert names["ollama"] == ["gpu-1", "windows-gpu"]  # seed 001's Linux box and seed 000's 3060
    data = dict(groups["linux"])["eyes"]
    assert data["ssh_hostname"] == "192.168.1.40"
    assert data["ssh_strict_host_key_checking"] == "yes"
    assert data["hearth_host"] == "eyes"


def test_unknown_and_missing_keys_name_file_line_and_path(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["eyes"]["gpus"][0]["vram"] = 16
        del data["hosts"]["eyes"]["address"]

    path = write_inventory(change)
    lines = problems(path)
    assert any(f"{path}:" in line and "hosts.eyes.gpus[0].vram: unknown key" in line for line in lines)
    assert any("hosts.eyes.address: missing required key" in line for line in lines)
    assert all(line.startswith(str(path)) for line in lines)


def test_a_model_that_does_not_fit_says_by_how_much(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["windows-gpu"]["serves"][0]["context"] = 65536

    lines = problems(write_inventory(change))
    (line,) = [line for line in lines if "hosts.windows-gpu.gpus[0]" in line]
    assert "do not fit RTX 3060" in line and "usable 11.0 GiB" in line and "GiB over" in line


def test_vllm_share_too_small_for_one_sequence(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["eyes"]["serves"][0]["gpu_memory_utilization"] = 0.5

    lines = problems(write_inventory(change))
    assert any("hosts.eyes.serves[0]" in line and "does not fit" in line and "short" in line for line in lines)


def test_fallback_chain_with_cloud_model_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["code"]["failover"] = ["reasoning", "cloud/gemini/gemini-3.1-pro"]

    lines = problems(write_inventory(change))
    assert any("routing.routes.code.failover" in line and "cloud model" in line for line in lines)


def test_fallback_chain_that_loops_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["chat"]["spill"] = ["chat", "reasoning"]
        data["routing"]["routes"]["code"]["failover"] = ["reasoning", "reasoning"]

    lines = problems(write_inventory(change))
    assert any("routing.routes.chat.spill: the chain loops back to chat" in line for line in lines)
    assert any("routing.routes.code.failover: the chain loops" in line for line in lines)


def test_route_with_no_upstream_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["buckets"]["coding"]["route"] = "kode"

    lines = problems(write_inventory(change))
    assert any("routing.buckets.coding.route: route kode has no upstream" in line for line in lines)


def test_terminal_route_that_falls_back_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["reasoning"]["failover"] = ["chat"]

    lines = problems(write_inventory(change))
    assert any("routing.routes.reasoning: a terminal route never falls back" in line for line in lines)


def test_duplicate_overlay_ip_and_address_are_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["phone2"]["overlay_ip"] = "10.77.0.21"
        data["hosts"]["phone3"]["address"] = "192.168.1.21"

    lines = problems(write_inventory(change))
    assert any("hosts.phone2.overlay_ip: 10.77.0.21 is already used by host phone1" in line for line in lines)
    assert any("hosts.phone3.address: 192.168.1.21 is already used by host phone1" in line for line in lines)


def test_overlay_ip_outside_the_overlay_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["phone1"]["overlay_ip"] = "10.78.0.21"

    assert any("hosts.phone1.overlay_ip: 10.78.0.21 is outside 10.77.0.0/24" in line
               for line in problems(write_inventory(change)))


def test_sleeping_host_without_mac_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        del data["hosts"]["windows-gpu"]["mac"]

    assert any("hosts.windows-gpu.mac: this host sleeps" in line for line in problems(write_inventory(change)))


def test_vision_route_on_a_blind_model_is_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["image_route"] = "chat"
        data["routing"]["buckets"]["vision"]["route"] = "chat"

    lines = problems(write_inventory(change))
    assert any("routing.image_route: route chat is served by mouth/gemma-4-31b, which cannot see images" in line
               for line in lines)
    assert any("routing.buckets.vision.route" in line and "cannot see images" in line for line in lines)


@pytest.mark.parametrize("where", ["cloud", "client", "gateway", "settings"])
def test_secret_in_plain_text_is_refused(write_inventory: Callable[..., Path], where: str) -> None:
    def change(data: dict[str, Any]) -> None:
        if where == "cloud":
            data["clouds"]["gemini"]["api_key"] = "AIzaSyD-not-a-reference"
        elif where == "client":
            data["clients"]["cursor"]["key"] = "sk-live-1234"
        elif where == "gateway":
            data["gateway"]["admin_token"] = "hunter2"
        else:
            data["settings"] = {"registry_password": "hunter2"}

    lines = problems(write_inventory(change))
    assert any("plain text" in line for line in lines), lines
    assert not any("AIzaSyD-not-a-reference" in line or "hunter2" in line or "sk-live-1234" in line
                   for line in lines if "plain text" not in line)


def test_every_problem_is_reported_at_once(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["hosts"]["phone2"]["overlay_ip"] = "10.77.0.21"
        del data["hosts"]["windows-gpu"]["mac"]
        data["routing"]["routes"]["reasoning"]["spill"] = ["chat"]

    assert len(problems(write_inventory(change))) >= 3


def test_secret_references_resolve_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_TEST_TOKEN", "abc\n")
    assert resolve_secret("env:HEARTH_TEST_TOKEN") == "abc"
    secret = tmp_path / "token"
    secret.write_text("xyz\n")
    assert resolve_secret(f"file:{secret}") == "xyz"
    with pytest.raises(SecretError, match="HEARTH_TEST_MISSING is not set"):
        resolve_secret("env:HEARTH_TEST_MISSING")
    with pytest.raises(SecretError, match="cannot read"):
        resolve_secret(f"file:{tmp_path / 'absent'}")


def test_pyinfra_refuses_an_invalid_inventory_before_connecting(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        del data["hosts"]["windows-gpu"]["mac"]
        for host in data["hosts"].values():  # TEST-NET addresses: nothing would answer anyway
            host["address"] = host["address"].replace("192.168.1.", "192.0.2.")

    path = write_inventory(change, name="broken.yml")
    (path.parent / "broken.py").write_text((REPO / "inventory" / "example.py").read_text())
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pyinfra"), "-y", str(path.parent / "broken.py"), "deploy.py"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "invalid inventory, nothing was touched" in result.stderr
    assert "hosts.windows-gpu.mac: this host sleeps" in result.stderr
    assert "Connecting" not in result.stdout + result.stderr


def test_ollama_models_on_one_host_share_the_server_settings(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        second = dict(data["hosts"]["windows-gpu"]["serves"][0], name="qwen2.5-coder:1.5b",
                      model="qwen2.5-coder:1.5b", keep_alive="5m", routes=["fim"])
        del second["arch"]
        data["hosts"]["windows-gpu"]["serves"].append(second)
        data["routing"]["routes"]["fim"] = {"on_busy": "busy"}

    # keep_alive is per model now (the gateway sends it with every request)
    load_inventory(write_inventory(change))

    def other_port(data: dict[str, Any]) -> None:
        change(data)
        data["hosts"]["windows-gpu"]["serves"][1]["port"] = 11435

    lines = problems(write_inventory(other_port))
    assert any("hosts.windows-gpu.serves[1].port: one Ollama server" in line for line in lines), lines


def test_more_warm_models_than_can_stay_loaded_are_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        first = data["hosts"]["windows-gpu"]["serves"][0]
        first.update(keep_alive="-1", max_loaded_models=1)
        second = dict(first, name="qwen2.5-coder:1.5b", model="qwen2.5-coder:1.5b", routes=["fim"])
        del second["arch"]
        data["hosts"]["windows-gpu"]["serves"].append(second)
        data["routing"]["routes"]["fim"] = {"on_busy": "busy"}

    lines = problems(write_inventory(change))
    assert any("hosts.windows-gpu.serves[1].keep_alive: 2 models are to stay loaded for good" in line
               for line in lines), lines


def test_failover_chains_that_loop_through_each_other_are_refused(write_inventory: Callable[..., Path]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["routing"]["routes"]["code"]["failover"] = ["chat"]
        data["routing"]["routes"]["chat"]["failover"] = ["code"]

    lines = problems(write_inventory(change))
    assert sum("failover chains loop" in line for line in lines) == 1, lines
    assert any("code -> chat -> code" in line or "chat -> code -> chat" in line for line in lines)


def test_a_host_pasted_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = (REPO / "inventory" / "lab.yml").read_text()
    block = text[text.index("  lab-agent:"):text.index("  lab-nas:")]
    pasted = text.replace(block, block + block.replace("192.168.77.13", "192.168.77.14")
                          .replace("10.77.0.13", "10.77.0.14"))
    path = tmp_path / "twice.yml"
    path.write_text(pasted)
    first = text[: text.index("  lab-agent:")].count("\n") + 1
    second = first + block.count("\n")
    lines = problems(path)
    assert lines == [f"{path}:{second}: hosts.lab-agent: duplicate key: also defined on line {first} "
                     "(YAML would silently keep only the last one)"]


def test_duplicate_keys_are_found_at_any_depth(tmp_path: Path) -> None:
    path = tmp_path / "deep.yml"
    text = (REPO / "inventory" / "lab.yml").read_text()
    assert text.count("        slots: 4\n") == 1
    path.write_text(text.replace("        slots: 4\n", "        slots: 4\n        slots: 2\n"))
    (line,) = problems(path)
    assert ": hosts.lab-vllm.serves[0].slots: duplicate key: also defined on line " in line


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("name: lab\nlan:\n\tcidr: 10.0.0.0/24\n", ":3:1:", "a tab character: YAML indents with spaces only"),
        ("name: lab\nhosts: [a, b\nlan: x\n", ":3:4:", "expected ',' or ']', but got ':'"),
    ],
)
def test_yaml_syntax_errors_name_file_line_and_column(tmp_path: Path, text: str, where: str, what: str) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(text)
    (line,) = problems(path)
    assert line.startswith(f"{path}{where} not valid YAML: {what}")
    assert "<unicode string>" not in line
