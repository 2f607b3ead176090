"""Node telemetry (issue 23 item 1): the node exporter's files and the GPU textfile collector.

The nvidia-smi lines below are in the format NVIDIA's manual documents for
``--query-gpu=... --format=csv,noheader,nounits`` (nvidia-smi(1), "QUERY OPTIONS" /
"--format", as shipped with driver 550.90.12:
https://manpages.ubuntu.com/manpages/plucky/man1/nvidia-smi.1.html): one line per GPU,
fields in query order, memory in MiB, power in W, utilisation in percent, temperature
in C, ``[N/A]`` / ``[Not Supported]`` where a device does not report a value (ECC on
GeForce cards, memory.total on a unified-memory GB10, power on laptop GPUs). The Xid
kernel lines follow NVIDIA's Xid documentation
(https://docs.nvidia.com/deploy/xid-errors/index.html: ``NVRM: Xid (PCI:0000:01:00): 79,
...`` = "GPU has fallen off the bus").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.commands import host_files
from hearth.configs import telemetry as configs
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, load_inventory
from hearth.lab.artifacts.publish import STANDINS
from hearth.telemetry import gpu_metrics

REPO = Path(__file__).resolve().parents[2]
RTX_3090 = ("0, NVIDIA GeForce RTX 3090, GPU-5f1c2e0a-8c1d-4f7e, 00000000:01:00.0, 535.261.03, 37, 18432, 24576, "
            "61, 212.45, 350.00, [N/A], [N/A]")
LAPTOP = ("1, NVIDIA GeForce RTX 4090 Laptop GPU, GPU-aa, 00000000:02:00.0, 550.54.14, 3, 9728, 16376, 48, [N/A], "
          "[N/A], [N/A], [N/A]")
A100 = ("0, NVIDIA A100-SXM4-80GB, GPU-cc, 00000000:07:00.0, 535.261.03, 100, 80000, 81920, 83, 398.12, 400.00, "
        "12, 1")
GB10 = ("0, NVIDIA GB10, GPU-bb, 0000000F:01:00.0, 580.95.05, 91, [N/A], [N/A], 55, 31.20, [Not Supported], "
        "[N/A], [N/A]")
XID_79 = "NVRM: Xid (PCI:0000:01:00): 79, pid=1234, name=python3, GPU has fallen off the bus."
XID_13 = "NVRM: Xid (PCI:0000:01:00): 13, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0)"


def samples(text: str) -> dict[str, float]:
    """'metric{labels}' -> value; HELP/TYPE lines checked to precede their samples."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            assert key.split("{")[0] in typed, line
            out[key] = float(value)
    return out


def test_query_fields_and_parse() -> None:
    (row,) = gpu_metrics.parse([RTX_3090])
    assert row["name"] == "NVIDIA GeForce RTX 3090" and row["temperature.gpu"] == "61"
    assert set(gpu_metrics.QUERY) >= {"utilization.gpu", "memory.used", "memory.total", "temperature.gpu",
                                      "power.draw", "power.limit", "ecc.errors.uncorrected.volatile.total"}
    with pytest.raises(ValueError, match="fields"):
        gpu_metrics.parse(["0, NVIDIA GeForce RTX 3090, 24576"])


def test_metrics_of_a_consumer_card_and_a_laptop_gpu() -> None:
    rows = gpu_metrics.parse([RTX_3090, LAPTOP])
    got = samples(gpu_metrics.render("den-rtx", rows, {}, set(), 0.5, 1700000000.0))
    card = 'host="den-rtx",gpu="0",model="NVIDIA GeForce RTX 3090"'
    assert got[f"hearth_gpu_utilization_ratio{{{card}}}"] == 0.37
    assert got[f"hearth_gpu_memory_used_bytes{{{card}}}"] == 18432 * 1024 * 1024
    assert got[f"hearth_gpu_memory_total_bytes{{{card}}}"] == 24576 * 1024 * 1024
    assert got[f"hearth_gpu_temperature_celsius{{{card}}}"] == 61
    assert got[f"hearth_gpu_power_draw_watts{{{card}}}"] == 212.45
    assert got[f"hearth_gpu_power_limit_watts{{{card}}}"] == 350
    assert got[f"hearth_gpu_unified_memory{{{card}}}"] == 0
    assert got[f"hearth_gpu_xid_errors_total{{{card}}}"] == 0
    assert not [k for k in got if k.startswith("hearth_gpu_ecc_errors")]  # GeForce: no ECC, no fake zero
    laptop = 'host="den-rtx",gpu="1",model="NVIDIA GeForce RTX 4090 Laptop GPU"'
    assert f"hearth_gpu_power_draw_watts{{{laptop}}}" not in got  # [N/A]: no sample
    assert got[f"hearth_gpu_temperature_celsius{{{laptop}}}"] == 48
    assert got['hearth_gpu_collector_success{host="den-rtx"}'] == 1
    info = [k for k in got if k.startswith("hearth_gpu_info") and 'gpu="0"' in k]
    assert info and 'uuid="GPU-5f1c2e0a-8c1d-4f7e"' in info[0] and 'driver="535.261.03"' in info[0]


def test_ecc_and_xid_errors_where_reported() -> None:
    rows = gpu_metrics.parse([A100])
    at_07 = [XID_13.replace("01:00", "07:00"), XID_79.replace("01:00", "07:00")]
    xids = gpu_metrics.xid_counts(["unrelated line", *at_07])
    got = samples(gpu_metrics.render("lab-vllm", rows, xids, set(), None, 0.0))
    card = 'host="lab-vllm",gpu="0",model="NVIDIA A100-SXM4-80GB"'
    assert got[f'hearth_gpu_ecc_errors{{{card},type="corrected"}}'] == 12
    assert got[f'hearth_gpu_ecc_errors{{{card},type="uncorrected"}}'] == 1
    assert got[f"hearth_gpu_xid_errors_total{{{card}}}"] == 2
    assert got[f"hearth_gpu_last_xid{{{card}}}"] == 79


def test_bus_ids_of_nvidia_smi_and_the_kernel_match() -> None:
    assert gpu_metrics.normal_bus_id("00000000:01:00.0") == gpu_metrics.normal_bus_id("0000:01:00") == "01:00"
    assert gpu_metrics.xid_counts([XID_79, XID_13]) == {"01:00": (2, 13)}


def test_unified_memory_reports_ram_pressure_instead_of_vram() -> None:
    meminfo = "MemTotal:       131072000 kB\nMemFree:         1000 kB\nMemAvailable:   32768000 kB\n"
    ratio = gpu_metrics.ram_used_ratio(meminfo)
    assert ratio == pytest.approx(0.75)
    for unified in (set(), {0}):  # memory.total [N/A] alone marks it, as does the inventory
        got = samples(gpu_metrics.render("spark", gpu_metrics.parse([GB10]), {}, unified, ratio, 0.0))
        card = 'host="spark",gpu="0",model="NVIDIA GB10"'
        assert got[f"hearth_gpu_unified_memory{{{card}}}"] == 1
        assert got[f"hearth_gpu_unified_memory_used_ratio{{{card}}}"] == pytest.approx(0.75)
        assert not [k for k in got if "memory_used_bytes" in k or "memory_total_bytes" in k]
        assert f"hearth_gpu_power_limit_watts{{{card}}}" not in got


def test_nvidia_smi_failure_is_a_zero_success_and_no_gpu_series() -> None:
    got = samples(gpu_metrics.render("h", None, {}, set(), None, 5.0))
    assert got == {'hearth_gpu_collector_success{host="h"}': 0,
                   'hearth_gpu_collector_last_run_timestamp_seconds{host="h"}': 5.0}


def test_label_values_are_escaped() -> None:
    row = gpu_metrics.parse([RTX_3090.replace("NVIDIA GeForce RTX 3090", 'odd "name" \\ x')])
    text = gpu_metrics.render("h", row, {}, set(), None, 0.0)
    assert 'model="odd \\"name\\" \\\\ x"' in text


@pytest.fixture
def standin(tmp_path: Path) -> tuple[Path, Path]:
    override = tmp_path / "override.json"
    source = (STANDINS / "nvidia-smi" / "nvidia-smi.py").read_text()
    source = source.replace("/etc/hearth-standin/nvidia-smi.json", str(override))
    source = source.replace("/usr/share/hearth-standin/nvidia-smi/gpus.json", str(tmp_path / "none.json"))
    program = tmp_path / "nvidia-smi"
    program.write_text(source.replace("#!/usr/bin/python3", f"#!{sys.executable}", 1))
    program.chmod(0o755)
    return program, override


def test_the_collector_against_the_standin_writes_the_textfile(standin: tuple[Path, Path], tmp_path: Path) -> None:
    program, override = standin
    override.write_text(json.dumps([
        {"name": "NVIDIA GeForce RTX 3090", "memory_mib": 24576, "power_limit_w": 350, "temperature_c": 91,
         "utilization_pct": 55, "memory_used_mib": 2048},
        {"name": "NVIDIA GB10", "memory_mib": 0, "power_limit_w": 140},
    ]))
    out = tmp_path / "textfile"
    code = gpu_metrics.main(["--host", "box", "--nvidia-smi", str(program), "--dir", str(out), "--unified", "1"])
    got = samples((out / gpu_metrics.OUTPUT).read_text())
    assert code == 0
    card = 'host="box",gpu="0",model="NVIDIA GeForce RTX 3090"'
    assert got[f"hearth_gpu_temperature_celsius{{{card}}}"] == 91
    assert got[f"hearth_gpu_utilization_ratio{{{card}}}"] == 0.55
    assert got[f"hearth_gpu_memory_used_bytes{{{card}}}"] == 2048 * 1024 * 1024
    assert got[f"hearth_gpu_power_draw_watts{{{card}}}"] == 35
    assert got['hearth_gpu_unified_memory{host="box",gpu="1",model="NVIDIA GB10"}'] == 1
    assert list(out.iterdir()) == [out / gpu_metrics.OUTPUT]  # the temporary file was renamed, not left
    override.write_text("[]")  # no device: nvidia-smi exits 6
    assert gpu_metrics.main(["--host", "box", "--nvidia-smi", str(program), "--dir", str(out)]) == 1
    assert samples((out / gpu_metrics.OUTPUT).read_text())['hearth_gpu_collector_success{host="box"}'] == 0


def test_the_textfile_is_valid_exposition_for_promtool(tmp_path: Path) -> None:
    promtool = subprocess.run(["which", "promtool"], capture_output=True, text=True).stdout.strip()
    if not promtool:
        pytest.skip("promtool missing (apt-get install prometheus; scripts/bootstrap does)")
    text = gpu_metrics.render("h", gpu_metrics.parse([RTX_3090, LAPTOP]), gpu_metrics.xid_counts([XID_79]), set(),
                              None, 1.0)
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    # promtool lints names too (counters must end in _total, units as suffixes); it exits 0 only when clean
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture(scope="module")
def lab() -> Inventory:
    return load_inventory(REPO / "inventory" / "lab.yml", group_defaults())


@pytest.fixture(scope="module")
def example() -> Inventory:
    return load_inventory(REPO / "inventory" / "example.yml", group_defaults())


def test_exporter_listens_on_the_overlay_address_only(lab: Inventory) -> None:
    for name, host in lab.hosts.items():
        files = {f.dest: f.render() for f in configs.host_files(lab, name)}
        args = files[configs.DEFAULTS]
        assert f'--web.listen-address={host.overlay_ip}:9100 ' in args
        assert args.count("--web.listen-address") == 1 and "0.0.0.0" not in args
        assert "\\" not in args  # systemd splits $ARGS; no escapes to get wrong
        assert f"After=wg-quick@{lab.overlay.interface}.service" in files[configs.DROPIN]


def test_gpu_timer_only_on_nvidia_hosts(lab: Inventory, example: Inventory) -> None:
    for inv in (lab, example):
        for name, host in inv.hosts.items():
            dests = {f.dest for f in host_files(inv, name)}
            if host.os != "linux":
                assert configs.DEFAULTS not in dests
                continue
            has_nvidia = any(g.vendor == "nvidia" for g in host.gpus)
            assert (configs.GPU_TIMER in dests) == has_nvidia, name
    spark = [n for n, h in example.hosts.items() if any(g.unified_memory for g in h.gpus)]
    assert spark
    service = {f.dest: f.render() for f in configs.host_files(example, spark[0])}[configs.GPU_SERVICE]
    assert f"--host {spark[0]} " in service and "--unified 0" in service
    lab_service = {f.dest: f.render() for f in configs.host_files(lab, "lab-vllm")}[configs.GPU_SERVICE]
    assert "--nvidia-smi /usr/lib/hearth-standin/nvidia-smi" in lab_service and "--unified" not in lab_service


def test_the_installed_script_is_the_tested_module(lab: Inventory) -> None:
    script = {f.dest: f for f in configs.host_files(lab, "lab-vllm")}[configs.GPU_SCRIPT]
    assert script.render() == Path(gpu_metrics.__file__).read_text()
    assert script.mode == "0755" and script.render().startswith("#!/usr/bin/python3\n")
