"""What a host really has: architecture, RAM, NIC MACs, NVIDIA GPUs (model, VRAM, driver).

One read-only shell script gathers everything in one round trip; the same script
serves the pyinfra fact (:class:`Hardware`, during a deploy) and `hearth plan
--facts` (over plain SSH, touching nothing). Parsing is pure Python, unit-tested on
nvidia-smi output in the format its manual documents (``--format=csv,noheader,nounits``:
one line per GPU, fields in query order, memory in MiB, power in W, ``[N/A]`` or
``[Not Supported]`` where a card has no value).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from pyinfra.api import FactBase

GPU_QUERY = ("index", "name", "memory.total", "driver_version", "power.limit",
             "power.min_limit", "power.max_limit", "uuid")  # fmt: skip
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
MIB_PER_GIB = 1024.0


@dataclass(frozen=True)
class GpuFact:
    """One GPU as nvidia-smi reports it."""

    index: int
    name: str
    memory_mib: int
    driver: str
    power_limit_w: float | None = None
    power_min_w: float | None = None
    power_max_w: float | None = None
    uuid: str = ""

    @property
    def vram_gb(self) -> float:
        """Total memory in GiB (the inventory's ``vram_gb``)."""
        return self.memory_mib / MIB_PER_GIB


@dataclass(frozen=True)
class NvidiaFact:
    """nvidia-smi's answer: ``ok`` (with GPUs, possibly none), ``absent`` (no nvidia-smi) or ``error``."""

    status: str
    gpus: tuple[GpuFact, ...] = ()
    message: str = ""

    @property
    def driver(self) -> str | None:
        return self.gpus[0].driver if self.gpus else None


@dataclass(frozen=True)
class HardwareFact:
    arch: str | None = None
    memory_mib: int | None = None
    macs: dict[str, str] = field(default_factory=dict)
    nvidia: NvidiaFact = NvidiaFact("absent")

    @property
    def memory_gb(self) -> float | None:
        return None if self.memory_mib is None else self.memory_mib / MIB_PER_GIB


def _number(value: str) -> float | None:
    value = value.strip()
    if not value or value.startswith("[") or value in ("N/A", "Not Supported"):
        return None
    return float(value)


def parse_nvidia_smi(lines: list[str]) -> tuple[GpuFact, ...]:
    """GPUs from ``nvidia-smi --query-gpu=<GPU_QUERY> --format=csv,noheader,nounits``.

    Example:
        parse_nvidia_smi(["0, NVIDIA GeForce RTX 3090, 24576, 535.261.03, 350.00, 100.00, 400.00, GPU-5f1c..."])
    """
    gpus = []
    for line in lines:
        if not line.strip():
            continue
        fields = [part.strip() for part in line.split(",")]
        if len(fields) < len(GPU_QUERY):
            raise ValueError(f"nvidia-smi line has {len(fields)} fields, want {len(GPU_QUERY)}: {line!r}")
        # A name never holds a comma in NVIDIA's product names, but be safe: the middle absorbs extras.
        extra = len(fields) - len(GPU_QUERY)
        name = ", ".join(fields[1:2 + extra])
        rest = fields[2 + extra:]
        memory = _number(rest[0])
        gpus.append(GpuFact(
            index=int(fields[0]), name=name, memory_mib=int(memory or 0), driver=rest[1],
            power_limit_w=_number(rest[2]), power_min_w=_number(rest[3]), power_max_w=_number(rest[4]),
            uuid=rest[5],
        ))  # fmt: skip
    return tuple(gpus)


def script(nvidia_smi: str = "nvidia-smi") -> str:
    """The read-only shell script that prints every section :func:`parse_hardware` reads."""
    smi = shlex.quote(nvidia_smi)
    query = ",".join(GPU_QUERY)
    return (
        "echo '@@ arch'; uname -m; "
        "echo '@@ memory'; grep '^MemTotal:' /proc/meminfo; "
        "echo '@@ macs'; for d in /sys/class/net/*; do n=${d##*/}; [ \"$n\" = lo ] && continue; "
        "printf '%s %s\\n' \"$n\" \"$(cat \"$d/address\" 2>/dev/null)\"; done; "
        f"echo '@@ nvidia'; if command -v {smi} >/dev/null 2>&1; then "
        f"out=$({smi} --query-gpu={query} --format=csv,noheader,nounits 2>&1); rc=$?; "
        "echo \"rc=$rc\"; printf '%s\\n' \"$out\"; else echo absent; fi"
    )


def parse_nvidia_section(lines: list[str]) -> NvidiaFact:
    if not lines or lines[0].strip() == "absent":
        return NvidiaFact("absent", message="nvidia-smi not found")
    rc = int(lines[0].strip().removeprefix("rc="))
    body = [line for line in lines[1:] if line.strip()]
    if rc == 0:
        try:
            return NvidiaFact("ok", parse_nvidia_smi(body))
        except ValueError as exc:
            return NvidiaFact("error", message=str(exc))
    message = " ".join(body).strip() or f"nvidia-smi exited {rc}"
    if "No devices were found" in message:
        return NvidiaFact("ok", (), message)
    return NvidiaFact("error", message=message)


def parse_hardware(lines: list[str]) -> HardwareFact:
    """Parse the output of :func:`script`."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.startswith("@@ "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    arch_lines = [line.strip() for line in sections.get("arch", []) if line.strip()]
    arch = ARCHES.get(arch_lines[0], arch_lines[0]) if arch_lines else None
    memory = None
    for line in sections.get("memory", []):
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "MemTotal:":
            memory = int(parts[1]) // 1024  # kB -> MiB
    macs = {}
    for line in sections.get("macs", []):
        parts = line.split()
        if len(parts) == 2 and parts[1] != "00:00:00:00:00:00":
            macs[parts[0]] = parts[1].lower()
    return HardwareFact(arch, memory, macs, parse_nvidia_section(sections.get("nvidia", [])))


class Hardware(FactBase[HardwareFact]):
    """
    The host's architecture, RAM, NIC MACs and NVIDIA GPUs, read-only.

    ``nvidia_smi`` is the program to ask (a path or a name on PATH; the setting
    ``nvidia_smi``).

    .. code:: python

        hw = host.get_fact(Hardware, nvidia_smi="nvidia-smi")
        hw.nvidia.gpus[0].name, hw.nvidia.gpus[0].vram_gb  # "NVIDIA GeForce RTX 3090", 24.0
    """

    def command(self, nvidia_smi: str = "nvidia-smi") -> str:
        return script(nvidia_smi)

    def process(self, output: list[str]) -> HardwareFact:
        return parse_hardware(output)
