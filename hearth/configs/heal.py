"""The healing timer on GPU hosts (issue 23 item 5, seed 002's one-minute timer).

``hearth-heal.timer`` runs ``hearth.telemetry.heal`` every ``heal_interval_s``: each of
the host's serve units, in the GPU start order (vLLM units by ``start_order``, then
Ollama), is probed on its overlay address and restarted within a budget when it does not
answer; a host serving a terminal route is never touched (the operator is paged). The
configuration is JSON computed here from the inventory.
"""

from __future__ import annotations

import inspect
import json
from pathlib import PurePosixPath
from typing import Any

from hearth.configs import ConfigFile, recover_cuda
from hearth.configs import ollama as ollama_configs
from hearth.configs import telemetry as telemetry_configs
from hearth.configs import vllm as vllm_configs
from hearth.configs.base import settings
from hearth.inventory import Inventory
from hearth.telemetry import heal

SCRIPT = "/usr/local/libexec/hearth-heal"
CONFIG = heal.CONFIG
STATE = "/var/lib/hearth-heal/state.json"
SERVICE = "/etc/systemd/system/hearth-heal.service"
TIMER = "/etc/systemd/system/hearth-heal.timer"
UNITS = [PurePosixPath(TIMER).name, PurePosixPath(SERVICE).name]  # the timer first: stopped before a pass
RULES = "hearth-heal.rules.yml"  # HearthServeDown, on the monitoring host (configs/monitoring.py)
SERVE_DOWN_PASSES = 3  # HearthServeDown: silent for this many healing periods in a row


def applies(inv: Inventory, name: str) -> bool:
    """Linux, a GPU, and a serve hearth runs there (vLLM units or Ollama)."""
    host = inv.hosts[name]
    return host.os == "linux" and bool(host.gpus) and bool(serves(inv, name))


def serves(inv: Inventory, name: str) -> list[dict[str, Any]]:
    """Units in the host's GPU start order, each with its probe URL and ready deadline."""
    host = inv.hosts[name]
    conf = settings(inv, name)
    out = [{"name": s.name, "unit": vllm_configs.unit_name(s), "engine": "vllm",
            "probe": f"{vllm_configs.base_url(inv, name, s)}/v1/models",
            "ready_timeout_s": vllm_configs.ready_timeout(s, vllm_configs.settings(inv, name)) + 60}
           for s in vllm_configs.vllm_serves(inv, name)]  # fmt: skip
    ollama = [s for s in host.serves if s.engine == "ollama"]
    if ollama:
        out.append({"name": ", ".join(s.name for s in ollama), "unit": "ollama.service", "engine": "ollama",
                    "probe": f"http://{ollama_configs.listen_address(inv, name)}/v1/models",
                    "ready_timeout_s": int(conf["heal_ready_timeout_s"])})  # fmt: skip
    return out


def interval_s(inv: Inventory, name: str) -> int:
    """The host's healing period (``heal_interval_s``)."""
    return int(settings(inv, name)["heal_interval_s"])


def serve_down_after_s(inv: Inventory, name: str) -> int:
    """HearthServeDown's ``for:`` on the host: ``SERVE_DOWN_PASSES`` of its healing periods."""
    return SERVE_DOWN_PASSES * interval_s(inv, name)


def serve_down_rules(inv: Inventory) -> dict[str, Any]:
    """Prometheus rules for ``HearthServeDown``: a serve silent for ``SERVE_DOWN_PASSES``
    healing periods of its own host, so the alert waits for the timer's restarts wherever
    its period differs (a fixed delay shorter than a long period would page after a single
    probe). One rule per period in the inventory, naming its hosts."""
    by_delay: dict[int, list[str]] = {}
    for name in inv.linux_hosts():
        if applies(inv, name):
            by_delay.setdefault(serve_down_after_s(inv, name), []).append(name)
    rules = [_serve_down_rule(hosts, for_s) for for_s, hosts in sorted(by_delay.items())]
    return {"groups": [{"name": "hearth-heal.alerts", "rules": rules}] if rules else []}


def _serve_down_rule(hosts: list[str], for_s: int) -> dict[str, Any]:
    silent = f"{for_s // 60} minutes" if for_s % 60 == 0 and for_s >= 120 else f"{for_s} seconds"
    return {
        "alert": "HearthServeDown",
        "expr": f'hearth_heal_serve_up{{host=~"{"|".join(hosts)}"}} == 0',
        "for": f"{for_s}s",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "{{ $labels.unit }} on {{ $labels.host }} does not answer",
            "description": (f"{{{{ $labels.unit }}}} on {{{{ $labels.host }}}} has not answered its probe for "
                            f"{silent} ({SERVE_DOWN_PASSES} healing passes): it did not come back, or it may not "
                            "be restarted (a terminal route's host). See `journalctl -u hearth-heal` on the host."),
        },
    }


def config(inv: Inventory, name: str) -> dict[str, Any]:
    conf = settings(inv, name)
    return {
        "host": name,
        "serves": serves(inv, name),
        "terminal_routes": recover_cuda.terminal_routes(inv, name),
        "max_restarts_per_hour": int(conf["heal_max_restarts_per_hour"]),
        "backoff_s": float(conf["heal_backoff_s"]),
        "probe_timeout_s": float(conf["heal_probe_timeout_s"]),
        "cuda_recovery_unit": "hearth-recover-cuda.service" if recover_cuda.applies(inv, name) else None,
        "nvidia_smi": str(conf.get("nvidia_smi", "nvidia-smi")),
        "state": STATE,
        "textfile_dir": telemetry_configs.TEXTFILE_DIR,
    }


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not applies(inv, name):
        return []
    interval = interval_s(inv, name)
    return [
        ConfigFile(dest=SCRIPT, template="heal/hearth-heal.py.j2", mode="0755",
                   context={"source": inspect.getsource(heal)}),
        ConfigFile(dest=CONFIG, template="heal/heal.json.j2",
                   context={"json": json.dumps(config(inv, name), indent=2, sort_keys=True)}),
        ConfigFile(dest=SERVICE, template="heal/hearth-heal.service.j2",
                   context={"script": SCRIPT, "config": CONFIG,
                            "timeout": 120 + sum(int(s["ready_timeout_s"]) + 30 for s in serves(inv, name))}),
        ConfigFile(dest=TIMER, template="heal/hearth-heal.timer.j2", context={"interval": interval}),
    ]
