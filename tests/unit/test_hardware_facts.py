"""Hardware facts (nvidia-smi, RAM, arch, MACs), drift against the inventory, the VRAM re-plan,
and `hearth plan --facts`.

The nvidia-smi lines follow the format its manual documents for
``--query-gpu=... --format=csv,noheader,nounits`` (nvidia-smi(1), "QUERY OPTIONS" and
"--format": one line per GPU, the fields in query order, comma-separated, memory
in MiB and power in W without units, ``[N/A]`` / ``[Not Supported]`` where a
device has no value); the two failure texts are the ones nvidia-smi prints
without a loaded driver (exit 9) and without a device (exit 6).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hearth.deploy_data import group_defaults
from hearth.drift import compare, normalise_model, replan, report, same_model
from hearth.facts.hardware import GPU_QUERY, HardwareFact, NvidiaFact, parse_hardware, parse_nvidia_smi, script
from hearth.facts.nvidia import parse_kernel, parse_runtime
from hearth.inventory import Inventory, load_inventory
from hearth.plan_facts import facts_text, gather, ssh_argv

REPO = Path(__file__).resolve().parents[2]
RTX_3090 = "0, NVIDIA GeForce RTX 3090, 24576, 535.261.03, 350.00, 100.00, 400.00, GPU-5f1c2e0a-8c1d-4f7e"
RTX_3060 = "0, NVIDIA GeForce RTX 3060, 12288, 535.261.03, 170.00, 100.00, 170.00, GPU-1b2c3d4e-3060"
RTX_3050 = "0, NVIDIA GeForce RTX 3050, 8192, 535.261.03, 130.00, 100.00, 130.00, GPU-1b2c3d4e-3050"
LAPTOP = "0, NVIDIA GeForce RTX 4090 Laptop GPU, 16376, 550.54.14, [N/A], [N/A], [N/A], GPU-aa"
GB10 = "0, NVIDIA GB10, [N/A], 580.95.05, [Not Supported], [N/A], [N/A], GPU-bb"
NO_DRIVER = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
             "Make sure that the latest NVIDIA driver is installed and running.")  # fmt: skip


@pytest.fixture(scope="module")
def lab() -> Inventory:
    return load_inventory(REPO / "inventory" / "lab.yml", group_defaults())


def fact(*gpu_lines: str, arch: str = "x86_64", mac: str = "02:68:65:61:72:12") -> HardwareFact:
    lines = ["@@ arch", arch, "@@ memory", "MemTotal:       32768000 kB", "@@ macs", f"eth0 {mac}",
             "@@ nvidia", "rc=0", *gpu_lines]  # fmt: skip
    return parse_hardware(lines)


def test_parse_one_gpu() -> None:
    (gpu,) = parse_nvidia_smi([RTX_3090])
    assert (gpu.index, gpu.name, gpu.memory_mib, gpu.driver) == (0, "NVIDIA GeForce RTX 3090", 24576, "535.261.03")
    assert gpu.vram_gb == 24.0
    assert (gpu.power_limit_w, gpu.power_min_w, gpu.power_max_w) == (350.0, 100.0, 400.0)
    assert gpu.uuid.startswith("GPU-5f1c")


def test_parse_not_available_values_and_several_gpus() -> None:
    laptop, gb10 = parse_nvidia_smi([LAPTOP, GB10.replace("0,", "1,", 1), ""])
    assert laptop.power_limit_w is None and round(laptop.vram_gb, 2) == 15.99
    assert (gb10.index, gb10.memory_mib, gb10.driver, gb10.power_limit_w) == (1, 0, "580.95.05", None)


def test_parse_refuses_short_lines() -> None:
    with pytest.raises(ValueError, match="want 8"):
        parse_nvidia_smi(["0, NVIDIA GeForce RTX 3090, 24576"])


@pytest.mark.parametrize(("lines", "status", "count", "message"), [
    (["absent"], "absent", 0, "nvidia-smi not found"),
    (["rc=9", NO_DRIVER], "error", 0, "couldn't communicate"),
    (["rc=6", "No devices were found"], "ok", 0, "No devices were found"),
    (["rc=0", RTX_3060], "ok", 1, ""),
])  # fmt: skip
def test_nvidia_section(lines: list[str], status: str, count: int, message: str) -> None:
    found = parse_hardware(["@@ nvidia", *lines]).nvidia
    assert (found.status, len(found.gpus)) == (status, count)
    assert message in found.message


def test_script_runs_read_only_in_a_shell(tmp_path: Path) -> None:
    """The very script the fact and `plan --facts` send, run here with a stand-in nvidia-smi."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = --query-gpu={','.join(GPU_QUERY)} ] || exit 2\necho '{RTX_3090}'\n")
    fake.chmod(0o755)
    out = subprocess.run(["sh", "-c", script(str(fake))], capture_output=True, text=True, check=True).stdout
    hw = parse_hardware(out.splitlines())
    assert hw.arch in ("amd64", "arm64") and hw.memory_mib and hw.memory_mib > 0
    assert hw.nvidia.status == "ok" and hw.nvidia.gpus[0].name == "NVIDIA GeForce RTX 3090"
    missing = subprocess.run(["sh", "-c", script(str(tmp_path / "none"))], capture_output=True, text=True).stdout
    assert parse_hardware(missing.splitlines()).nvidia.status == "absent"


def test_model_names_compare_loosely() -> None:
    assert normalise_model("NVIDIA GeForce RTX 3060") == "rtx 3060"
    assert same_model("RTX 3060", "NVIDIA GeForce RTX 3060")
    assert same_model("RTX 4090 Laptop GPU", "NVIDIA GeForce RTX 4090 Laptop GPU")
    assert not same_model("RTX 3060", "NVIDIA GeForce RTX 3090")
    assert not same_model("RTX 3060", "NVIDIA GeForce RTX 3060 Ti")


def test_no_drift_when_the_host_matches(lab: Inventory) -> None:
    assert compare(lab, "lab-ollama", fact(RTX_3060), "535") == []
    assert report(lab, "lab-ollama", fact(RTX_3060), "535") == ("", False)


def test_bigger_card_is_drift_that_still_fits(lab: Inventory) -> None:
    drifts = {d.where: (d.inventory, d.detected) for d in compare(lab, "lab-ollama", fact(RTX_3090), "535")}
    assert drifts == {"hosts.lab-ollama.gpus[0].model": ("RTX 3060", "NVIDIA GeForce RTX 3090"),
                      "hosts.lab-ollama.gpus[0].vram_gb": ("12", "24.0")}
    result = replan(lab, "lab-ollama", fact(RTX_3090))
    assert result.refusals == []
    (plan,) = result.plans
    assert plan.gpu.vram_gb == 24.0 and plan.gpu.reserved_gb == 1.0  # the inventory's reserve stays
    text, refuse = report(lab, "lab-ollama", fact(RTX_3090), "535")
    assert not refuse and "hosts.lab-ollama.gpus[0].model: inventory RTX 3060, detected NVIDIA GeForce RTX 3090" in text
    assert "everything still fits" in text


def test_smaller_card_refuses_the_serving_settings(lab: Inventory) -> None:
    text, refuse = report(lab, "lab-ollama", fact(RTX_3050), "535")
    assert refuse
    assert "hosts.lab-ollama.gpus[0].vram_gb: inventory 12, detected 8.0" in text
    assert "refused" in text and "qwen2.5-coder:14b" in text and "GiB over" in text


def test_no_gpu_detected_is_a_clear_error_naming_the_host(lab: Inventory) -> None:
    empty = parse_hardware(["@@ nvidia", "rc=6", "No devices were found"])
    text, refuse = report(lab, "lab-ollama", empty, "535")
    assert refuse and "lab-ollama has gpus: in the inventory but no NVIDIA GPU is detected" in text
    broken = HardwareFact(nvidia=NvidiaFact("error", message=NO_DRIVER))
    text, refuse = report(lab, "lab-vllm", broken, "535")
    assert refuse and "lab-vllm" in text and "couldn't communicate" in text


def test_arch_mac_driver_and_power_drift(lab: Inventory) -> None:
    other_branch = RTX_3060.replace("535.261.03", "550.54.14")
    drifts = {d.where for d in compare(lab, "lab-ollama", fact(other_branch, arch="aarch64", mac="02:00:00:00:00:01"),
                                       "535")}  # fmt: skip
    assert drifts == {"hosts.lab-ollama.arch", "hosts.lab-ollama.mac", "settings.nvidia_driver_branch"}
    assert compare(lab, "lab-ollama", fact(other_branch), None) == []  # driver not managed: not drift
    capped = lab.hosts["lab-ollama"].gpus[0].model_copy(update={"power_limit_w": 250})
    host = lab.hosts["lab-ollama"].model_copy(update={"gpus": [capped]})
    inv = lab.model_copy(update={"hosts": {**lab.hosts, "lab-ollama": host}})
    (drift,) = compare(inv, "lab-ollama", fact(RTX_3060), "535")
    assert drift.where == "hosts.lab-ollama.gpus[0].power_limit_w" and "100-170 W" in drift.detected


def test_kernel_reboot_reasons() -> None:
    assert parse_kernel(["virt=none", "nouveau=1", "loaded=", "ondisk=535.261.03"]).reboot_reason() == (
        "nouveau is loaded; it is blacklisted from the next boot")
    upgrade = parse_kernel(["virt=none", "nouveau=0", "loaded=535.183.01", "ondisk=535.261.03"])
    assert upgrade.reboot_reason() == "nvidia module 535.183.01 is loaded, 535.261.03 is installed"
    assert parse_kernel(["virt=none", "nouveau=0", "loaded=535.261.03", "ondisk=535.261.03"]).reboot_reason() is None
    assert parse_kernel(["virt=systemd-nspawn", "nouveau=1", "loaded=", "ondisk="]).reboot_reason() is None


def test_k3s_runtime_state() -> None:
    state = parse_runtime(["unit=k3s-agent", "since=1764489600", "runtime=1764489700", "nvidia=1"])
    assert (state.unit, state.active_since, state.runtime_changed, state.config_has_nvidia) == (
        "k3s-agent", 1764489600, 1764489700, True)
    idle = parse_runtime(["unit=", "runtime=", "nvidia=0"])
    assert idle.unit is None and idle.runtime_changed is None


def test_ssh_is_strict_and_touches_nothing(lab: Inventory) -> None:
    argv = ssh_argv(lab, "lab-ollama")
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    assert "UserKnownHostsFile=/var/lib/hearth-lab/ssh/known_hosts" in argv
    assert argv[-2:] == ["hearth@192.168.77.12", "sh -s"]


def test_plan_facts_side_by_side_and_replan(lab: Inventory, tmp_path: Path) -> None:
    """A fake runner answers with the script's own output (run here) per host."""
    second = "1, NVIDIA GeForce RTX 4080, 16376, 535.261.03, 320.00, 100.00, 320.00, GPU-cc"  # lab-vllm's gpu1
    answers = {"lab-ollama": RTX_3090, "lab-vllm": LAPTOP.replace("550.54.14", "535.261.03") + "\n" + second}

    def runner(inv: Inventory, name: str, text: str) -> str:
        if name == "lab-agent":
            raise ConnectionError("ssh: connect to host 192.168.77.13 port 22: No route to host")
        fake = tmp_path / f"smi-{name}"
        line = answers.get(name)
        fake.write_text(f"#!/bin/sh\necho '{line}'\n" if line else "#!/bin/sh\necho 'No devices were found'\nexit 6\n")
        fake.chmod(0o755)
        return subprocess.run(["sh", "-c", script(str(fake))], capture_output=True, text=True).stdout

    text, refuse = facts_text(lab, gather(lab, runner))
    assert not refuse
    rows = [line.split() for line in text.splitlines()]
    assert ["lab-ollama", "gpu0", "model", "RTX", "3060", "NVIDIA", "GeForce", "RTX", "3090", "DRIFT"] in rows
    assert any(r[:2] == ["lab-vllm", "gpu0"] and "DRIFT" not in r for r in rows)
    assert "unreachable: ssh: connect to host 192.168.77.13" in text
    assert "VRAM re-plan on the detected GPUs (GiB)" in text and "lab-ollama/gpu0" in text

    answers["lab-ollama"] = RTX_3050
    text, refuse = facts_text(lab, gather(lab, runner))
    assert refuse and "refused" in text
