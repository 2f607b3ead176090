#!/usr/bin/python3
"""hearth lab STAND-IN for nvidia-smi: reports the GPUs the lab inventory declares for this machine.

Not NVIDIA's program: there is no GPU and no driver in a lab container. It answers
the queries hearth makes (``--query-gpu=... --format=csv[,noheader][,nounits]``,
``-L``, ``--version``) from a table the lab builds from its inventory
(``/usr/share/hearth-standin/nvidia-smi/gpus.json``, host name -> GPUs). A test can
make it report other cards by writing ``/etc/hearth-standin/nvidia-smi.json`` (a
JSON list of GPUs: name, memory_mib, and optionally power_limit_w, power_min_w,
power_max_w, and the readings utilization_pct, memory_used_mib, temperature_c,
power_draw_w, ecc_corrected, ecc_uncorrected) on the machine; an empty list means no
device. Readings default to an idle card (0 %, 0 MiB used, 34 C, 10 % of the power
limit); ECC counts are ``[N/A]`` unless given (consumer cards report no ECC), and a
unified-memory card (memory_mib 0) has no memory.used/total, as on a DGX Spark.

The driver version is the installed Debian nvidia-smi package's when there is one
(the real driver packages are installed in the lab), else the table's.
"""

import hashlib
import json
import socket
import subprocess
import sys

TABLE = "/usr/share/hearth-standin/nvidia-smi/gpus.json"
OVERRIDE = "/etc/hearth-standin/nvidia-smi.json"
DEFAULT_DRIVER = "535.261.03"
UNITS = {"memory.total": "MiB", "memory.used": "MiB", "memory.free": "MiB", "power.limit": "W",
         "power.min_limit": "W", "power.max_limit": "W", "power.default_limit": "W", "power.draw": "W",
         "utilization.gpu": "%"}


def load():
    try:
        with open(OVERRIDE) as f:
            gpus = json.load(f)
    except FileNotFoundError:
        try:
            with open(TABLE) as f:
                table = json.load(f)
        except FileNotFoundError:
            table = {}
        gpus = table.get(socket.gethostname(), [])
    return gpus


def driver_version(gpu):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "nvidia-smi"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    return out.split("-")[0] if out else gpu.get("driver", DEFAULT_DRIVER)


def _maybe(count):
    return None if count is None else str(count)


def value(gpu, index, field):
    memory = gpu.get("memory_mib")
    power = {"power.limit": gpu.get("power_limit_w"), "power.min_limit": gpu.get("power_min_w"),
             "power.max_limit": gpu.get("power_max_w"), "power.default_limit": gpu.get("power_limit_w")}
    values = {
        "index": str(index), "name": gpu["name"], "driver_version": driver_version(gpu),
        "uuid": gpu.get("uuid") or "GPU-{}-hearth-standin".format(hashlib.sha256(
            f"{socket.gethostname()}/{index}/{gpu['name']}".encode()).hexdigest()[:12]),
        "memory.total": None if not memory else str(memory),
        "memory.used": None if not memory else str(gpu.get("memory_used_mib", 0)),
        "memory.free": None if not memory else str(memory - gpu.get("memory_used_mib", 0)),
        "pci.bus_id": f"00000000:{index + 1:02X}:00.0",
        "utilization.gpu": str(gpu.get("utilization_pct", 0)),
        "temperature.gpu": str(gpu.get("temperature_c", 34)),
        "power.draw": "{:.2f}".format(gpu.get("power_draw_w", (gpu.get("power_limit_w") or 200) / 10)),
        "ecc.errors.corrected.volatile.total": _maybe(gpu.get("ecc_corrected")),
        "ecc.errors.uncorrected.volatile.total": _maybe(gpu.get("ecc_uncorrected")),
    }
    if field in power:
        return "[N/A]" if power[field] is None else f"{power[field]:.2f}"
    if field not in values:
        raise KeyError(field)
    result = values[field]
    return "[N/A]" if result is None else result


def query(fields, fmt):
    options = fmt.split(",")
    if "csv" not in options:
        print('"--format" must be csv in this stand-in', file=sys.stderr)
        return 2
    gpus = load()
    if not gpus:
        print("No devices were found")
        return 6
    try:
        rows = []
        for index, gpu in enumerate(gpus):
            row = []
            for field in fields:
                cell = str(len(gpus)) if field == "count" else value(gpu, index, field)
                if "nounits" not in options and field in UNITS and not cell.startswith("["):
                    cell = f"{cell} {UNITS[field]}"
                row.append(cell)
            rows.append(row)
    except KeyError as exc:
        print(f'Field "{exc.args[0]}" is not a valid field to query.', file=sys.stderr)
        return 2
    if "noheader" not in options:
        print(", ".join(f + (f" [{UNITS[f]}]" if f in UNITS and "nounits" not in options else "")
                        for f in fields))
    for row in rows:
        print(", ".join(row))
    return 0


def main(argv):
    args = dict(a.split("=", 1) if "=" in a else (a, "") for a in argv)
    if "--query-gpu" in args:
        return query([f.strip() for f in args["--query-gpu"].split(",") if f.strip()], args.get("--format", ""))
    if "-L" in args or "--list-gpus" in args:
        gpus = load()
        for index, gpu in enumerate(gpus):
            print(f"GPU {index}: {gpu['name']} (UUID: {value(gpu, index, 'uuid')})")
        return 0 if gpus else 6
    if "--version" in args or not argv:
        gpus = load()
        print("NVIDIA-SMI hearth lab stand-in")
        print(f"DRIVER version : {driver_version(gpus[0] if gpus else {})}")
        return 0
    print("nvidia-smi stand-in: unsupported arguments: {}".format(" ".join(argv)), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
