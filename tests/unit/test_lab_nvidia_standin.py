"""The lab's NVIDIA stand-ins: the nvidia-smi stand-in answers hearth's query in nvidia-smi's
format (parsed by the same code as real output), the GPU table comes from the inventory, and
the toolkit package carries the stand-ins without touching /usr/bin/nvidia-smi."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.facts.hardware import parse_hardware, script
from hearth.lab.artifacts import nvidia
from hearth.lab.artifacts.publish import STANDINS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def standin(tmp_path: Path) -> tuple[Path, Path]:
    """The stand-in with its two data paths moved under tmp_path; (program, override file)."""
    override = tmp_path / "override.json"
    source = (STANDINS / "nvidia-smi" / "nvidia-smi.py").read_text()
    source = source.replace("/etc/hearth-standin/nvidia-smi.json", str(override))
    source = source.replace("/usr/share/hearth-standin/nvidia-smi/gpus.json", str(tmp_path / "none.json"))
    program = tmp_path / "nvidia-smi"
    program.write_text(source.replace("#!/usr/bin/python3", f"#!{sys.executable}", 1))
    program.chmod(0o755)
    return program, override


def test_standin_answers_the_fact_query(standin: tuple[Path, Path]) -> None:
    program, override = standin
    override.write_text(json.dumps([{"name": "NVIDIA GeForce RTX 3090", "memory_mib": 24576,
                                     "power_limit_w": 350, "power_min_w": 100, "power_max_w": 400}]))  # fmt: skip
    out = subprocess.run(["sh", "-c", script(str(program))], capture_output=True, text=True, check=True).stdout
    (gpu,) = parse_hardware(out.splitlines()).nvidia.gpus
    assert (gpu.name, gpu.vram_gb, gpu.power_max_w) == ("NVIDIA GeForce RTX 3090", 24.0, 400.0)
    assert gpu.uuid.startswith("GPU-")


def test_standin_without_devices_and_bad_fields(standin: tuple[Path, Path]) -> None:
    program, override = standin
    override.write_text("[]")
    none = subprocess.run([str(program), "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    assert (none.returncode, none.stdout.strip()) == (6, "No devices were found")
    assert parse_hardware(subprocess.run(["sh", "-c", script(str(program))], capture_output=True,
                                         text=True).stdout.splitlines()).nvidia.gpus == ()  # fmt: skip
    override.write_text(json.dumps([{"name": "NVIDIA GB10", "memory_mib": 0}]))
    bad = subprocess.run([str(program), "--query-gpu=bogus", "--format=csv"], capture_output=True, text=True)
    assert bad.returncode == 2 and 'Field "bogus"' in bad.stderr
    unified = subprocess.run([str(program), "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert unified.strip() == "NVIDIA GB10, [N/A]"


def test_gpu_table_from_the_inventory() -> None:
    table = nvidia.gpu_table(REPO / "inventory" / "lab.yml")
    assert set(table) == {"lab-vllm", "lab-ollama"}
    assert table["lab-ollama"] == [{"name": "NVIDIA GeForce RTX 3060", "memory_mib": 12288, "power_limit_w": 200,
                                    "power_min_w": 100, "power_max_w": 450}]  # fmt: skip
    assert nvidia.product_name("RTX PRO 6000 Blackwell") == "NVIDIA RTX PRO 6000 Blackwell"
    assert nvidia.gpu_table(None) == {}


def test_toolkit_package_tree(tmp_path: Path) -> None:
    src = STANDINS / "debs" / nvidia.TOOLKIT
    tree = nvidia.toolkit_tree(src, STANDINS, tmp_path, tmp_path / "no-lab")
    assert (tree / "usr/bin/nvidia-ctk").stat().st_mode & 0o111
    assert (tree / "usr/bin/nvidia-container-runtime").stat().st_mode & 0o111
    assert (tree / nvidia.STANDIN_SMI).stat().st_mode & 0o111
    assert not (tree / "usr/bin/nvidia-smi").exists()  # never over the real one
    assert json.loads((tree / nvidia.GPU_TABLE).read_text()) == {}
    if shutil.which("dpkg-deb"):
        from hearth.lab.artifacts import aptrepo

        deb = aptrepo.build_deb(tree, tmp_path / "out")
        listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
        assert "./usr/bin/nvidia-container-runtime" in listing and f"./{nvidia.STANDIN_SMI}" in listing
