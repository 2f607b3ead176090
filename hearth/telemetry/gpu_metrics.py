#!/usr/bin/python3
"""hearth-gpu-metrics: per-GPU metrics for the node exporter's textfile collector.

Installed by roles/telemetry on NVIDIA hosts as ``/usr/local/libexec/hearth-gpu-metrics``
and run by ``hearth-gpu-metrics.timer``. Standard library only (it runs on the host's
own python3, outside any virtualenv). Each run asks ``nvidia-smi --query-gpu=<QUERY>
--format=csv,noheader,nounits`` once, counts the driver's Xid reports in this boot's
kernel log, and atomically replaces ``<dir>/hearth_gpu.prom``.

Metric names and labels are stable (labels ``host`` = the inventory name, ``gpu`` = the
nvidia-smi index, ``model`` = the product name nvidia-smi reports)::

    hearth_gpu_info{host,gpu,model,uuid,pci_bus_id,driver}   1
    hearth_gpu_utilization_ratio                              0..1
    hearth_gpu_memory_used_bytes / hearth_gpu_memory_total_bytes   (cards with their own memory)
    hearth_gpu_unified_memory                                 1 on a unified-memory GPU, else 0
    hearth_gpu_unified_memory_used_ratio                      unified GPUs: RAM in use, 1 - MemAvailable/MemTotal
    hearth_gpu_temperature_celsius
    hearth_gpu_power_draw_watts / hearth_gpu_power_limit_watts
    hearth_gpu_ecc_errors{type="corrected"|"uncorrected"}     volatile counts, where the card reports ECC
    hearth_gpu_xid_errors_total                               Xid reports in this boot's kernel log
    hearth_gpu_last_xid                                       the last Xid code (0: none this boot)
    hearth_gpu_collector_success{host}                        1 when nvidia-smi answered, else 0
    hearth_gpu_collector_last_run_timestamp_seconds{host}

A value nvidia-smi does not have for a card (``[N/A]``, ``[Not Supported]``: its manual's
notation for "this device does not report it") produces no sample, never a zero:
dashboards and rules see an absent series, not a false reading.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

QUERY = ("index", "name", "uuid", "pci.bus_id", "driver_version", "utilization.gpu", "memory.used",
         "memory.total", "temperature.gpu", "power.draw", "power.limit",
         "ecc.errors.corrected.volatile.total", "ecc.errors.uncorrected.volatile.total")  # fmt: skip
OUTPUT = "hearth_gpu.prom"
MIB = 1024 * 1024
# The driver's kernel message: "NVRM: Xid (PCI:0000:01:00): 79, pid=..., GPU has fallen off the bus."
XID = re.compile(r"NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+)")

HELP = {
    "hearth_gpu_info": ("gauge", "GPU identity (value 1)."),
    "hearth_gpu_utilization_ratio": ("gauge", "Percent of time a kernel ran on the GPU, as a ratio."),
    "hearth_gpu_memory_used_bytes": ("gauge", "GPU memory in use."),
    "hearth_gpu_memory_total_bytes": ("gauge", "GPU memory installed."),
    "hearth_gpu_unified_memory": ("gauge", "1 when the GPU shares the host's RAM (no VRAM figure)."),
    "hearth_gpu_unified_memory_used_ratio": ("gauge", "Unified-memory GPU: RAM in use, 1 - MemAvailable/MemTotal."),
    "hearth_gpu_temperature_celsius": ("gauge", "GPU core temperature."),
    "hearth_gpu_power_draw_watts": ("gauge", "GPU power draw."),
    "hearth_gpu_power_limit_watts": ("gauge", "GPU power limit in force."),
    "hearth_gpu_ecc_errors": ("gauge", "ECC errors since the driver loaded (volatile), by type."),
    "hearth_gpu_xid_errors_total": ("counter", "NVIDIA Xid reports for this GPU in this boot's kernel log."),
    "hearth_gpu_last_xid": ("gauge", "The last Xid code reported for this GPU this boot (0: none)."),
    "hearth_gpu_collector_success": ("gauge", "1 when nvidia-smi answered the last query."),
    "hearth_gpu_collector_last_run_timestamp_seconds": ("gauge", "When the collector last ran."),
}  # fmt: skip


def number(value: str) -> float | None:
    """A reading, or None for nvidia-smi's ``[N/A]`` / ``[Not Supported]`` / empty."""
    value = value.strip()
    if not value or value.startswith("[") or value in ("N/A", "Not Supported"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse(lines: list[str]) -> list[dict[str, str]]:
    """Rows of ``nvidia-smi --query-gpu=<QUERY> --format=csv,noheader,nounits`` as field -> text.

    Example:
        parse(["0, NVIDIA GeForce RTX 3090, GPU-5f1c..., 00000000:01:00.0, 535.261.03, 37, 1024, 24576, 61, "
               "212.45, 350.00, [N/A], [N/A]"])[0]["temperature.gpu"]  # "61"
    """
    rows = []
    for line in lines:
        if not line.strip():
            continue
        fields = [part.strip() for part in line.split(",")]
        if len(fields) < len(QUERY):
            raise ValueError(f"nvidia-smi line has {len(fields)} fields, want {len(QUERY)}: {line!r}")
        extra = len(fields) - len(QUERY)  # a comma inside the product name: the name absorbs it
        fields = [fields[0], ", ".join(fields[1:2 + extra]), *fields[2 + extra:]]
        rows.append(dict(zip(QUERY, fields, strict=True)))
    return rows


def normal_bus_id(bus: str) -> str:
    """PCI address without domain padding and function: nvidia-smi's ``00000000:01:00.0`` and the
    kernel's ``0000:01:00`` both become ``01:00``."""
    parts = bus.lower().split(":")
    return ":".join(parts[-2:]).split(".")[0] if len(parts) >= 2 else bus.lower()


def xid_counts(kernel_lines: list[str]) -> dict[str, tuple[int, int]]:
    """Normalised PCI address -> (Xid reports, last Xid code) from kernel log lines."""
    counts: dict[str, tuple[int, int]] = {}
    for line in kernel_lines:
        match = XID.search(line)
        if match:
            bus = normal_bus_id(match.group(1))
            count, _ = counts.get(bus, (0, 0))
            counts[bus] = (count + 1, int(match.group(2)))
    return counts


def ram_used_ratio(meminfo: str) -> float | None:
    """1 - MemAvailable/MemTotal from /proc/meminfo's text."""
    values = {}
    for line in meminfo.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("MemTotal:", "MemAvailable:"):
            values[parts[0]] = float(parts[1])
    total, available = values.get("MemTotal:"), values.get("MemAvailable:")
    if not total or available is None:
        return None
    return max(0.0, min(1.0, 1.0 - available / total))


def _labels(labels: dict[str, str]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def render(host: str, rows: list[dict[str, str]] | None, xids: dict[str, tuple[int, int]],
           unified: set[int], ram_ratio: float | None, now: float) -> str:
    """The textfile: every metric this run has a value for. ``rows`` None: nvidia-smi failed."""
    samples: dict[str, list[str]] = {name: [] for name in HELP}

    def add(metric: str, labels: dict[str, str], value: float | None) -> None:
        if value is not None:
            text = str(int(value)) if float(value).is_integer() else repr(float(value))
            samples[metric].append(f"{metric}{_labels(labels)} {text}")

    for row in rows or []:
        index = int(row["index"])
        gpu = {"host": host, "gpu": str(index), "model": row["name"]}
        add("hearth_gpu_info", {**gpu, "uuid": row["uuid"], "pci_bus_id": row["pci.bus_id"],
                                "driver": row["driver_version"]}, 1)  # fmt: skip
        utilisation = number(row["utilization.gpu"])
        add("hearth_gpu_utilization_ratio", gpu, None if utilisation is None else utilisation / 100)
        total = number(row["memory.total"])
        is_unified = index in unified or total is None
        add("hearth_gpu_unified_memory", gpu, 1 if is_unified else 0)
        if is_unified:
            add("hearth_gpu_unified_memory_used_ratio", gpu, ram_ratio)
        else:
            used = number(row["memory.used"])
            add("hearth_gpu_memory_used_bytes", gpu, None if used is None else used * MIB)
            add("hearth_gpu_memory_total_bytes", gpu, None if total is None else total * MIB)
        add("hearth_gpu_temperature_celsius", gpu, number(row["temperature.gpu"]))
        add("hearth_gpu_power_draw_watts", gpu, number(row["power.draw"]))
        add("hearth_gpu_power_limit_watts", gpu, number(row["power.limit"]))
        add("hearth_gpu_ecc_errors", {**gpu, "type": "corrected"}, number(row["ecc.errors.corrected.volatile.total"]))
        add("hearth_gpu_ecc_errors", {**gpu, "type": "uncorrected"},
            number(row["ecc.errors.uncorrected.volatile.total"]))
        count, last = xids.get(normal_bus_id(row["pci.bus_id"]), (0, 0))
        add("hearth_gpu_xid_errors_total", gpu, count)
        add("hearth_gpu_last_xid", gpu, last)
    add("hearth_gpu_collector_success", {"host": host}, 0 if rows is None else 1)
    add("hearth_gpu_collector_last_run_timestamp_seconds", {"host": host}, round(now, 3))
    out = []
    for metric, lines in samples.items():
        if lines:
            kind, text = HELP[metric]
            out += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", *lines]
    return "\n".join(out) + "\n"


def query(nvidia_smi: str, timeout: float) -> list[dict[str, str]] | None:
    try:
        proc = subprocess.run([nvidia_smi, f"--query-gpu={','.join(QUERY)}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"hearth-gpu-metrics: {nvidia_smi} did not answer: {exc}", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print(f"hearth-gpu-metrics: {nvidia_smi} exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()}",
              file=sys.stderr)  # fmt: skip
        return None
    try:
        return parse(proc.stdout.splitlines())
    except ValueError as exc:
        print(f"hearth-gpu-metrics: {exc}", file=sys.stderr)
        return None


def kernel_xid_lines(timeout: float) -> list[str]:
    """This boot's kernel messages that mention an Xid (journalctl's own filter)."""
    try:
        proc = subprocess.run(["journalctl", "-k", "-b", "-o", "cat", "--no-pager", "--grep", "NVRM: Xid"],
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    return proc.stdout.splitlines()


def write_atomically(directory: str, text: str) -> None:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".hearth_gpu.", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(directory, OUTPUT))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hearth-gpu-metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="the inventory's name for this host (label host)")
    parser.add_argument("--nvidia-smi", default="nvidia-smi")
    parser.add_argument("--dir", default="/var/lib/prometheus/node-exporter", help="textfile collector directory")
    parser.add_argument("--unified", default="", help="comma-separated GPU indexes with unified memory")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    unified = {int(i) for i in args.unified.split(",") if i.strip()}
    rows = query(args.nvidia_smi, args.timeout)
    try:
        with open("/proc/meminfo") as f:
            ratio = ram_used_ratio(f.read())
    except OSError:
        ratio = None
    text = render(args.host, rows, xid_counts(kernel_xid_lines(args.timeout)), unified, ratio, time.time())
    write_atomically(args.dir, text)
    return 0 if rows is not None else 1


if __name__ == "__main__":
    sys.exit(main())
