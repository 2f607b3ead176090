"""`hearth plan INVENTORY --facts`: what every Linux host really has, beside the inventory.

Each host is asked over SSH (the inventory's user, port, key and known_hosts, strict
host-key checking) to run the read-only script of :mod:`hearth.facts.hardware`;
nothing is written anywhere. The answer is shown side by side with the inventory,
followed by the drift per field and the VRAM re-plan on the detected GPUs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hearth.configs.base import settings
from hearth.drift import compare, nvidia_gpus, replan, report
from hearth.facts.hardware import HardwareFact, parse_hardware, script
from hearth.inventory.model import Inventory
from hearth.plan import table

Runner = Callable[[Inventory, str, str], str]  # (inventory, host, script) -> stdout
SSH_TIMEOUT_S = 30


def ssh_argv(inv: Inventory, name: str, command: str = "sh -s") -> list[str]:
    """ssh to the host as the deploy would: strict host keys, no prompts, bounded connect."""
    host = inv.hosts[name]
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
            "-p", str(host.ssh_port or inv.ssh.port)]  # fmt: skip
    if inv.ssh.key:
        argv += ["-i", str(Path(inv.ssh.key).expanduser())]
    if inv.ssh.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={Path(inv.ssh.known_hosts).expanduser()}"]
    return [*argv, f"{host.ssh_user or inv.ssh.user}@{host.address}", command]


def ssh_runner(inv: Inventory, name: str, text: str) -> str:
    proc = subprocess.run(ssh_argv(inv, name), input=text, capture_output=True, text=True,
                          timeout=SSH_TIMEOUT_S, check=False)  # fmt: skip
    if proc.returncode == 255:
        raise ConnectionError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "ssh failed")
    return proc.stdout


def gather(inv: Inventory, runner: Runner = ssh_runner) -> dict[str, HardwareFact | str]:
    """Host -> its facts, or why they could not be read (a sleeping host, a refused key...)."""
    names = [name for name, host in inv.hosts.items() if host.os == "linux"]

    def one(name: str) -> HardwareFact | str:
        smi = str(settings(inv, name)["nvidia_smi"])
        try:
            return parse_hardware(runner(inv, name, script(smi)).splitlines())
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            return f"unreachable: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def _branch(inv: Inventory, name: str) -> str | None:
    s = settings(inv, name)
    return str(s["nvidia_driver_branch"]) if s["nvidia_manage_driver"] and nvidia_gpus(inv.hosts[name]) else None


def side_by_side(inv: Inventory, name: str, fact: HardwareFact) -> Iterator[list[str]]:
    host = inv.hosts[name]
    drifted = {d.where for d in compare(inv, name, fact, _branch(inv, name))}

    def row(field: str, where: str, declared: str, detected: str) -> list[str]:
        return [name, field, declared, detected, "DRIFT" if where in drifted else ""]

    yield row("arch", f"hosts.{name}.arch", host.arch, fact.arch or "?")
    yield row("ram", "", "-", f"{fact.memory_gb:.1f} GiB" if fact.memory_gb is not None else "?")
    macs = ", ".join(f"{nic} {mac}" for nic, mac in sorted(fact.macs.items())) or "?"
    yield row("mac", f"hosts.{name}.mac", host.mac or "-", macs)
    declared = nvidia_gpus(host)
    if not declared and fact.nvidia.status != "ok":
        return
    if fact.nvidia.status != "ok":
        yield row("gpus", f"hosts.{name}.gpus", f"{len(declared)} NVIDIA", f"none ({fact.nvidia.message})")
        return
    if len(fact.nvidia.gpus) != len(declared):
        yield row("gpus", f"hosts.{name}.gpus", f"{len(declared)} NVIDIA", f"{len(fact.nvidia.gpus)}")
    for position in range(max(len(declared), len(fact.nvidia.gpus))):
        index, gpu = declared[position] if position < len(declared) else (position, None)
        found = fact.nvidia.gpus[position] if position < len(fact.nvidia.gpus) else None
        path = f"hosts.{name}.gpus[{index}]"
        yield row(f"gpu{index} model", f"{path}.model", gpu.model if gpu else "-", found.name if found else "-")
        vram = f"{found.vram_gb:.1f} GiB" if found and found.memory_mib else ("unified" if found else "-")
        yield row(f"gpu{index} vram", f"{path}.vram_gb", f"{gpu.vram_gb:g} GiB" if gpu else "-", vram)
    if fact.nvidia.driver:
        branch = _branch(inv, name)
        yield row("driver", "settings.nvidia_driver_branch", f"{branch}.x" if branch else "-", fact.nvidia.driver)


def facts_text(inv: Inventory, found: dict[str, HardwareFact | str]) -> tuple[str, bool]:
    """(text, refuse): inventory and reality side by side, drift, re-plan; refuse when something no longer fits."""
    rows: list[list[str]] = []
    lines: list[str] = []
    refuse_any = False
    for name, fact in found.items():
        if isinstance(fact, str):
            rows.append([name, "-", "-", fact, ""])
            continue
        rows.extend(side_by_side(inv, name, fact))
        text, refuse = report(inv, name, fact, _branch(inv, name))
        refuse_any |= refuse
        if text:
            lines += ["", text]
            plans = replan(inv, name, fact).plans
            if plans:
                lines.append("")
                lines += _replan_table(plans)
    head = ["Hardware: inventory and what the hosts report (read over SSH, nothing changed)"]
    head += table(["host", "field", "inventory", "detected", ""], rows)
    if not lines:
        lines = ["", "No drift: every host has what the inventory says."]
    return "\n".join(head + lines) + "\n", refuse_any


def _replan_table(plans: list) -> list[str]:
    rows = []
    for plan in plans:
        budget = f"{plan.gpu.usable_gb:.1f} of {plan.gpu.vram_gb:g}"
        for model in plan.models:
            rows.append([f"{plan.host}/gpu{plan.index}", plan.gpu.model, budget, model.serve,
                         f"{model.resident_gb:.1f}"])  # fmt: skip
            budget = ""
        rows.append(["", "", "", "headroom", f"{plan.headroom_gb:.1f}"])
    return ["VRAM re-plan on the detected GPUs (GiB)", *table(["gpu", "card", "usable", "model", "resident"], rows)]
