"""Reading an inventory into what the lab builds, and refusing what it cannot."""

from pathlib import Path

import pytest
import yaml

from hearth.lab.sh import LabError
from hearth.lab.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _lab_data() -> dict:
    return yaml.safe_load((REPO / "inventory/lab.yml").read_text())


def test_lab_inventory_gives_four_machines_on_the_bridge() -> None:
    spec = load_spec(REPO / "inventory/lab.yml")
    assert [m.name for m in spec.machines] == ["lab-cp", "lab-vllm", "lab-ollama", "lab-agent"]
    assert spec.host_ip == "192.168.77.1"
    assert spec.broadcast == "192.168.77.255"
    assert spec.machine("lab-ollama").sleeps is True
    assert spec.machine("lab-cp").sleeps is False
    assert spec.artifact_url == "http://192.168.77.1:8585"


def test_missing_mac_names_the_host(tmp_path: Path) -> None:
    data = _lab_data()
    del data["hosts"]["lab-agent"]["mac"]
    with pytest.raises(LabError, match="lab-agent: the lab needs a mac"):
        load_spec(_write(tmp_path, data))


def test_address_off_the_lan_names_the_host(tmp_path: Path) -> None:
    data = _lab_data()
    data["hosts"]["lab-agent"]["address"] = "10.0.0.5"  # not the gateway host (gateway.lan)
    with pytest.raises(LabError, match=r"lab-agent: address 10\.0\.0\.5 is not a host address"):
        load_spec(_write(tmp_path, data))


def test_duplicate_mac_and_bridge_address_are_refused(tmp_path: Path) -> None:
    data = _lab_data()
    data["hosts"]["lab-agent"]["mac"] = data["hosts"]["lab-cp"]["mac"]
    with pytest.raises(LabError, match=r"02:68:65:61:72:10 is already used by"):
        load_spec(_write(tmp_path, data))
    data = _lab_data()
    data["hosts"]["lab-agent"]["address"] = "192.168.77.1"
    with pytest.raises(LabError, match="already used by \\(this machine"):
        load_spec(_write(tmp_path, data))


def test_unknown_machine_lists_the_known_ones() -> None:
    spec = load_spec(REPO / "inventory/lab.yml")
    with pytest.raises(LabError, match=r"known: lab-cp, lab-vllm"):
        spec.machine("nope")
