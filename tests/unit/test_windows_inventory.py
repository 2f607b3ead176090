"""The inventory's windows section: the NIC that wakes the box, reach, power plan; validated early."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth.configs import windows as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import InventoryError, load_inventory


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load_inventory(path, group_defaults())
    return exc.value.lines


def gpu(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda data: change(data["hosts"]["windows-gpu"])


def test_a_wifi_nic_for_wake_on_lan_is_refused_with_file_line_and_key(write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(gpu(lambda h: h.update(windows={"nic": {"name": "Wi-Fi", "kind": "wifi"}})))
    (line,) = problems(path)
    assert line.startswith(f"{path}:")
    assert ": hosts.windows-gpu.windows.nic.kind: Wake-on-LAN needs a wired NIC" in line


def test_the_wake_nic_must_carry_the_mac_the_gateway_wakes(write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(gpu(lambda h: h.update(windows={"nic": {"mac": "d8:bb:c1:30:60:99"}})))
    (line,) = problems(path)
    assert "hosts.windows-gpu.windows.nic.mac: the gateway wakes this host at d8:bb:c1:30:60:12" in line


def test_a_windows_section_on_linux_is_an_error(write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(lambda d: d["hosts"]["eyes"].update(windows={"reach": "overlay"}))
    assert any("hosts.eyes.windows: a windows section on an os: linux host" in line for line in problems(path))


def test_unknown_keys_and_values_are_refused(write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(gpu(lambda h: h.update(windows={"wake_timers": "sometimes", "hibernat": False})))
    lines = problems(path)
    assert any("hosts.windows-gpu.windows.hibernat: unknown key" in line for line in lines)
    assert any("hosts.windows-gpu.windows.wake_timers:" in line for line in lines)


def test_defaults_from_the_example(write_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(write_inventory(), group_defaults())
    assert configs.wake_nic(inv, "windows-gpu") == configs.Nic(mac="d8:bb:c1:30:60:12", name=None)
    assert configs.idle_minutes(inv, "windows-gpu") == 15  # sleep.idle_minutes
    assert configs.idle_minutes(inv, "mouth") == 0  # does not sleep: never on idle
    env = configs.ollama_environment(inv, "windows-gpu")
    assert env["OLLAMA_KEEP_ALIVE"] == "0" and env["OLLAMA_HOST"] == "10.77.0.30:11434"
    assert env["OLLAMA_MAX_LOADED_MODELS"] == "1" and env["OLLAMA_NUM_PARALLEL"] == "1"
    assert env["OLLAMA_CONTEXT_LENGTH"] == "16384" and env["OLLAMA_MODELS"] == r"C:\ProgramData\Ollama\models"
    assert configs.lmstudio_url(inv, "mouth") == "http://10.77.0.50:1234"


def test_a_nic_by_name_and_ssh_tunnel_reach(write_inventory: Callable[..., Path]) -> None:
    path = write_inventory(gpu(lambda h: h.update(windows={"nic": {"name": "Ethernet"}, "reach": "ssh_tunnel",
                                                          "wake_timers": "important", "hibernate": True},
                                                 ssh_user="gamer")))
    inv = load_inventory(path, group_defaults())
    assert configs.wake_nic(inv, "windows-gpu") == configs.Nic(mac=None, name="Ethernet")
    # Behind an SSH tunnel Ollama listens on loopback and nothing but SSH is opened
    assert configs.ollama_environment(inv, "windows-gpu")["OLLAMA_HOST"] == "127.0.0.1:11434"
    assert [r.name for r in configs.firewall_rules(inv, "windows-gpu")] == ["hearth-ssh-22"]
    assert not configs.on_overlay(inv, "windows-gpu")
