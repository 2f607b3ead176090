"""vLLM's files: one systemd unit per served model, its command line from the inventory.

One unit per model (``vllm-<served name>.service``) rather than a template unit: each
model has its own command line, environment (its card) and start order, and a
changed flag must restart that model alone. The units are chained in the
inventory's start order, in the units themselves: each one's ``ExecStartPost``
waits until the model answers ``/health`` and lists its served name on
``/v1/models`` (so the unit is *active* only when ready), and each later unit has
``Wants=`` + ``After=`` the previous one, so any start -- the boot transaction,
one ``systemctl start`` of several units in any order, or a start of the last
unit alone -- brings the models up one at a time, each ready before the next (two
vLLM instances initialising CUDA at once misjudge each other's memory). An
``ExecStartPre`` also waits for the previous model to answer (``-``: a failed
previous model is reported, not fatal), for starts systemd cannot order (a
previous model restarting on its own). ``Wants=`` propagates no stop or restart:
a changed flag restarts that model alone.

Every ``vllm serve`` argument comes from the serve: model, ``--served-model-name``,
``--host`` (the overlay address, never the LAN), ``--port``, ``--max-model-len``
(context), ``--gpu-memory-utilization``, ``--kv-cache-dtype`` and the serve's
``flags`` (checked against the pinned release by validation).
"""

from __future__ import annotations

import re
from typing import Any

from hearth import vllm_flags
from hearth.configs import ConfigFile
from hearth.inventory import Inventory, Serve

USER = "vllm"
HOME = "/opt/vllm"
VENV = f"{HOME}/venv"
STATE = "/var/lib/vllm"
ETC = "/etc/hearth/vllm"
HF_TOKEN = f"{ETC}/hf-token"
READY = "/usr/local/libexec/hearth-vllm-ready"
UNIT_DIR = "/etc/systemd/system"
# Hearth's KV dtype names -> vLLM's (--kv-cache-dtype); "auto" is vLLM's default and omitted.
KV_DTYPES = {"bf16": "bfloat16", "fp16": "auto"}
# CUDA's device nodes by device group (nixpkgs' hardened GPU units list the same set).
NVIDIA_DEVICES = ("char-nvidiactl", "char-nvidia-frontend", "char-nvidia-uvm", "char-nvidia-caps")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:=,+@-]+$")


def unit_name(serve: Serve) -> str:
    """``vllm-<served name>.service``, with characters systemd would escape replaced by '-'."""
    return f"vllm-{_UNSAFE.sub('-', serve.name).strip('-')}.service"


def systemd_quote(arg: str) -> str:
    """One argument as systemd's ExecStart/Environment parser reads it back intact.

    Plain words stay bare; anything else is double-quoted with backslash and quote
    escaped, and ``%`` / ``$`` doubled so systemd expands no specifier or variable.

    Example:
        systemd_quote('{"type":"yarn","factor":4.0}')  # '"{\\"type\\":\\"yarn\\",\\"factor\\":4.0}"'
    """
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if arg and _PLAIN.match(arg):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def vllm_serves(inv: Inventory, name: str) -> list[Serve]:
    """This host's vLLM serves in start order: ``start_order`` ascending, then the rest in list order."""
    serves = [s for s in inv.hosts[name].serves if s.engine == "vllm"]
    return sorted(serves, key=lambda s: (s.start_order is None, s.start_order or 0, serves.index(s)))


def settings(inv: Inventory, name: str) -> dict[str, Any]:
    """The vllm_* settings for this host: group_data, overridden by the inventory's settings."""
    from hearth.deploy_data import group_defaults

    merged = {k: v for k, v in group_defaults().items() if k.startswith(("vllm_", "pip_index_url"))}
    merged.update({k: v for k, v in inv.settings.items() if k in merged})
    merged.update({k: v for k, v in inv.hosts[name].settings.items() if k in merged})
    return merged


def base_url(inv: Inventory, name: str, serve: Serve) -> str:
    return f"http://{inv.hosts[name].overlay_ip}:{serve.listen_port}"


def command(inv: Inventory, name: str, serve: Serve, version: str) -> list[str]:
    """The exact ``vllm serve`` argv for one served model."""
    recorded = vllm_flags.load(version)
    args = [f"{VENV}/bin/vllm", "serve", serve.model,
            "--served-model-name", serve.name,
            "--host", str(inv.hosts[name].overlay_ip),
            "--port", str(serve.listen_port),
            "--max-model-len", str(serve.context)]  # fmt: skip
    if serve.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", f"{serve.gpu_memory_utilization:g}"]
    kv = KV_DTYPES.get(serve.kv_cache_dtype, serve.kv_cache_dtype)
    if kv != "auto":
        args += ["--kv-cache-dtype", kv]
    return args + vllm_flags.flag_args(recorded, serve.flags)


def devices(inv: Inventory, name: str, serve: Serve) -> str | None:
    """CUDA_VISIBLE_DEVICES: the serve's card (and the next ones for tensor parallelism)."""
    if not inv.hosts[name].gpus:
        return None
    tp = serve.flags.get("tensor-parallel-size", 1)
    count = tp if isinstance(tp, int) and tp > 0 else 1
    return ",".join(str(serve.gpu + i) for i in range(count))


def environment(inv: Inventory, name: str, serve: Serve, conf: dict[str, Any]) -> dict[str, str]:
    env = {
        "HOME": STATE,
        "HF_HOME": str(conf["vllm_hf_home"]),
        "VLLM_LOGGING_LEVEL": str(conf["vllm_logging_level"]).upper(),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if conf.get("vllm_hf_token"):
        env["HF_TOKEN_PATH"] = HF_TOKEN  # huggingface_hub reads the token from this 0600 file
    visible = devices(inv, name, serve)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    env.update(serve.env)
    return env


def ready_timeout(serve: Serve, conf: dict[str, Any]) -> int:
    return int(serve.ready_timeout_s or conf["vllm_ready_timeout_s"])


def unit_ordering(inv: Inventory) -> list[str]:
    """After the overlay (vLLM binds its address) and the NVIDIA stack where present."""
    units = ["nvidia-persistenced.service"]
    if inv.overlay.kind == "wireguard":
        units.insert(0, f"wg-quick@{inv.overlay.interface}.service")
    return units


def unit_file(inv: Inventory, name: str, serve: Serve, previous: Serve | None) -> ConfigFile:
    conf = settings(inv, name)
    timeout = ready_timeout(serve, conf)
    url = base_url(inv, name, serve)
    chain = [unit_name(previous)] if previous else []
    writable = sorted({STATE, str(conf["vllm_hf_home"])})
    wait_previous = None
    previous_timeout = 0
    if previous is not None:  # belt and braces for starts outside one transaction (see the module doc)
        previous_timeout = ready_timeout(previous, conf)
        wait_previous = " ".join(systemd_quote(a) for a in (
            "/usr/bin/python3", READY, base_url(inv, name, previous), previous.name, str(previous_timeout),
            unit_name(previous)))
    return ConfigFile(
        dest=f"{UNIT_DIR}/{unit_name(serve)}",
        template="vllm/vllm.service.j2",
        context={
            "serve": serve.name, "model": serve.model, "user": USER, "state": STATE,
            "exec_start": " ".join(systemd_quote(a) for a in command(inv, name, serve, str(conf["vllm_version"]))),
            "ready": " ".join(systemd_quote(a) for a in ("/usr/bin/python3", READY, url, serve.name, str(timeout))),
            "environment": [systemd_quote(f"{k}={v}") for k, v in environment(inv, name, serve, conf).items()],
            "wants": unit_ordering(inv) + chain, "after": unit_ordering(inv) + chain,
            "wait_previous": wait_previous, "previous": previous.name if previous else None,
            # systemd's own start timeout covers the wait for the previous model, this
            # model's ready wait, and a margin to report it
            "timeout_start": previous_timeout + timeout + 60,
            "restart_sec": int(conf["vllm_restart_sec"]),
            "start_limit_burst": int(conf["vllm_start_limit_burst"]),
            "start_limit_interval": int(conf["vllm_start_limit_interval_s"]),
            "devices": NVIDIA_DEVICES if inv.hosts[name].gpus else (),
            "writable": writable,
        },
    )  # fmt: skip


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    """The ready-wait script and one unit per served model, in start order."""
    if inv.hosts[name].os != "linux":
        return []
    serves = vllm_serves(inv, name)
    if not serves:
        return []
    files = [ConfigFile(dest=READY, template="vllm/hearth-vllm-ready.py.j2", mode="0755")]
    for index, serve in enumerate(serves):
        files.append(unit_file(inv, name, serve, serves[index - 1] if index else None))
    return files
