"""Lab: the NVIDIA role on the GPU machines, and hardware drift after a card swap.

What is real here: Debian's driver packages from non-free (through the lab's apt
proxy; in a container the user-space half only, the kernel side being the hosting
machine's: checked absent), the toolkit
repository and its signed key, apt's signature check, the package install, the
cluster manifests on the k3s server. Stand-ins: the toolkit package (the lab's
signed repository) and nvidia-smi (reports the GPUs the inventory declares for the
machine, or what a test writes into /etc/hearth-standin/nvidia-smi.json).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.configs import nvidia as configs
from hearth.configs.base import settings
from hearth.deploy_data import group_defaults
from hearth.drift import replan, same_model
from hearth.facts.hardware import GpuFact, HardwareFact, NvidiaFact
from hearth.facts.system import Container
from hearth.inventory import Inventory, load_inventory
from hearth.lab import cycle
from hearth.lab.artifacts.nvidia import product_name

pytestmark = pytest.mark.lab
OVERRIDE = "/etc/hearth-standin/nvidia-smi.json"


@pytest.fixture(scope="module")
def inv(lab: Any) -> Inventory:
    return load_inventory(lab.inventory, group_defaults())


@pytest.fixture(scope="module")
def gpu_hosts(inv: Inventory) -> list[str]:
    hosts = configs.nvidia_hosts(inv)
    if not hosts:
        pytest.skip("no Linux host with an NVIDIA GPU in this inventory")
    return hosts


def smi(inv: Inventory, name: str) -> str:
    return str(settings(inv, name)["nvidia_smi"])


def test_toolkit_from_the_signed_repository(lab: Any, inv: Inventory, gpu_hosts: list[str]) -> None:
    for name in gpu_hosts:
        node = lab.host(name)
        sources = configs.toolkit_sources(inv, name)
        assert node.file(sources.dest).content_string == sources.render()
        assert node.file(configs.TOOLKIT_KEY).exists
        assert node.package(configs.TOOLKIT_PACKAGE).is_installed
        # apt took it from that repository, with its signature checked
        policy = node.check_output(f"apt-cache policy {configs.TOOLKIT_PACKAGE}")
        assert str(settings(inv, name)["nvidia_toolkit_repo_url"]) in policy
        assert "NVIDIA Container Toolkit CLI version" in node.check_output("nvidia-ctk --version")
        assert node.exists("nvidia-container-runtime")


def test_driver_packages_of_the_pinned_branch(lab: Any, inv: Inventory, gpu_hosts: list[str]) -> None:
    managed = [n for n in gpu_hosts if settings(inv, n)["nvidia_manage_driver"]]
    if not managed:
        pytest.skip("no host where hearth manages the driver")
    for name in managed:
        node = lab.host(name)
        branch = configs.branch(inv, name)
        container = Container()  # the role's own fact, read over testinfra's connection
        facts = {"container": container.process(node.check_output(container.command()).splitlines())}
        for package in configs.driver_packages(inv, name, facts):
            pkg = node.package(package)
            assert pkg.is_installed, package
        if facts["container"]:
            # the kernel side is the hosting machine's: no dkms, no firmware, no compiler it pulls in
            for package in ("nvidia-kernel-dkms", "firmware-nvidia-gsp", "gcc", "dkms"):
                assert not node.package(package).is_installed, package
        assert node.package("nvidia-smi").version.startswith(f"{branch}.")
        assert node.file(configs.NOUVEAU_BLACKLIST).contains("^blacklist nouveau$")
        assert node.file(configs.DRIVER_PIN).contains(f"^Pin: version {branch}\\.\\*$")
        _print_install_cost(node)
        # the real nvidia-smi is installed and not hidden; the facts come from the setting's program
        assert node.file("/usr/bin/nvidia-smi").exists
        assert smi(inv, name) == "/usr/bin/nvidia-smi" or node.file(smi(inv, name)).exists


def _print_install_cost(node: Any) -> None:
    """What the driver install cost on this machine: apt's own log (start, end, packages) and
    the size of the downloaded packages (printed; run with -s to see it)."""
    log = node.check_output("cat /var/log/apt/history.log")
    for entry in log.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in entry.strip().splitlines() if ": " in line)
        if "nvidia-smi" in fields.get("Commandline", ""):
            start, end = (node.check_output(f"date -d '{fields[key].replace('  ', ' ')}' +%s")
                          for key in ("Start-Date", "End-Date"))  # fmt: skip
            count = fields.get("Install", "").count("),") + 1
            size = node.check_output("du -sm /var/cache/apt/archives | cut -f1")
            print(f"\nnvidia driver install on {node.backend.hostname}: {int(end) - int(start)} s, "
                  f"{count} packages, {size} MiB in apt's cache")


def test_each_machine_reports_its_declared_gpus(lab: Any, inv: Inventory, gpu_hosts: list[str]) -> None:
    query = "--query-gpu=index,name,memory.total --format=csv,noheader,nounits"
    for name in gpu_hosts:
        lines = lab.host(name).check_output(f"{shlex.quote(smi(inv, name))} {query}").splitlines()
        declared = [gpu for gpu in inv.hosts[name].gpus if gpu.vendor == "nvidia"]
        assert len(lines) == len(declared)
        for line, gpu in zip(lines, declared, strict=True):
            assert line.split(", ")[1] == product_name(gpu.model)


def test_device_plugin_on_the_k3s_servers(lab: Any, inv: Inventory, gpu_hosts: list[str]) -> None:
    servers = inv.hosts_with_role("k3s_server")
    if not servers:
        pytest.skip("no k3s server in this inventory")
    expected = {cf.dest: cf.render() for cf in configs.cluster_files(inv)}
    for name in servers:
        node = lab.host(name)
        for dest, text in expected.items():  # k3s's manifests folder is root's
            assert node.check_output(f"sudo cat {dest}") + "\n" == text
            assert node.check_output(f"sudo stat -c %a {dest}") == "600"
        assert yaml.safe_load(expected[configs.DEVICE_PLUGIN])["spec"]["template"]["spec"]["runtimeClassName"] \
            == "nvidia"


def _plan_facts(lab: Any) -> subprocess.CompletedProcess[str]:
    hearth = Path(sys.executable).with_name("hearth")
    return subprocess.run([str(hearth), "plan", str(lab.inventory), "--facts"], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def _card(name: str, vram_gb: float) -> GpuFact:
    return GpuFact(0, name, int(vram_gb * 1024), "535.261.03", 200.0, 100.0, 450.0)


def _swap(lab: Any, name: str, gpus: list[GpuFact]) -> None:
    body = json.dumps([{"name": g.name, "memory_mib": g.memory_mib, "power_limit_w": g.power_limit_w,
                        "power_min_w": g.power_min_w, "power_max_w": g.power_max_w} for g in gpus])  # fmt: skip
    lab.host(name).check_output(f"sudo install -d /etc/hearth-standin && echo {shlex.quote(body)} "
                                f"| sudo tee {OVERRIDE} >/dev/null")  # fmt: skip


@pytest.mark.slow_scenario
def test_card_swap_drift_report_replan_and_refusal(lab: Any, inv: Inventory, gpu_hosts: list[str]) -> None:
    """Swap a machine's card: `hearth plan --facts` shows the drift and the re-plan; a card too
    small for its serving settings makes the deploy refuse that host and change nothing there."""
    if not lab.local:
        pytest.skip("changes what the lab's nvidia-smi stand-in reports: local lab only")
    serving = [n for n in gpu_hosts if inv.hosts[n].serves and len(inv.hosts[n].gpus) == 1]
    if not serving:
        pytest.skip("no single-GPU host that serves a model")
    name = serving[0]
    declared = inv.hosts[name].gpus[0]
    # a swapped-in card that is not the declared model, whatever the inventory declares
    other = next(n for n in ("NVIDIA GeForce RTX 3090", "NVIDIA RTX A6000") if not same_model(declared.model, n))
    bigger, smaller = _card(other, declared.vram_gb * 2), _card("NVIDIA GeForce RTX 3050", 4)
    # what the planner says those cards mean for this host (the expectations, from the inventory)
    assert replan(inv, name, HardwareFact(nvidia=NvidiaFact("ok", (bigger,)))).refusals == []
    assert replan(inv, name, HardwareFact(nvidia=NvidiaFact("ok", (smaller,)))).refusals
    node = lab.host(name)
    try:
        _swap(lab, name, [bigger])
        shown = _plan_facts(lab)
        assert shown.returncode == 0, shown.stderr
        assert f"hosts.{name}.gpus[0].model: inventory {declared.model}, detected {bigger.name}" in shown.stdout
        assert "VRAM re-plan on the detected GPUs" in shown.stdout and f"{name}/gpu0" in shown.stdout
        assert "everything still fits" in shown.stdout

        _swap(lab, name, [smaller])
        shown = _plan_facts(lab)
        assert shown.returncode == 1 and "refused" in shown.stdout
        units = node.check_output("sudo sha256sum /etc/systemd/system/*.service")
        run = cycle.deploy(cycle.pyinfra_inventory_for(lab.inventory))
        assert run.failed_hosts == [name], (run.failed_hosts, run.stderr_tail)
        assert "no longer fit the detected hardware" in run.stderr_tail, run.stderr_tail
        assert node.check_output("sudo sha256sum /etc/systemd/system/*.service") == units

        _swap(lab, name, [])  # the card is gone (or the driver cannot see it)
        shown = _plan_facts(lab)
        assert shown.returncode == 1
        assert f"{name} has gpus: in the inventory but no NVIDIA GPU is detected" in shown.stdout
    finally:
        node.check_output(f"sudo rm -f {OVERRIDE}")
    assert _plan_facts(lab).returncode == 0
