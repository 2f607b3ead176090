"""Sleeping again: the hearth-idle check on Linux hosts that sleep (``sleep.sleeps``).

A timer runs `hearth-idle` every ``interval_s(idle_minutes)``; it suspends the host
(`systemctl suspend`) once nothing has used it for the inventory's ``idle_minutes``:
no model loaded in Ollama (``/api/ps``; the gateway's keep-warm loads the model with a
keep_alive, so a keep-warm window holds the host up), no vLLM request running or
waiting, no connection to a serve port from anyone but the gateway, no SSH session
but the automation user's, no sleep inhibitor. Every decision goes to the journal
(``journalctl -t hearth-idle``). The script is the template
``templates/sleep/hearth-idle.py.j2`` (standard library only).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from hearth.configs import ConfigFile
from hearth.configs import ollama as ollama_configs
from hearth.inventory import Inventory

SCRIPT = "/usr/local/libexec/hearth-idle"
CONFIG = "/etc/hearth/idle.json"
STATE = "/run/hearth-idle/state.json"
UNIT_DIR = "/etc/systemd/system"
SERVICE = f"{UNIT_DIR}/hearth-idle.service"
TIMER = f"{UNIT_DIR}/hearth-idle.timer"
ENGINES = ("ollama", "vllm")
OLLAMA_UNIT = PurePosixPath(ollama_configs.UNIT).name  # roles/ollama's unit: its journal has the request log


def applies(inv: Inventory, name: str) -> bool:
    """A Linux host that sleeps."""
    host = inv.hosts[name]
    return host.os == "linux" and host.sleep.sleeps


def interval_s(idle_minutes: int) -> int:
    """How often the check runs: a quarter of the idle time, between 10 s and 60 s."""
    return max(10, min(60, idle_minutes * 15))


def automation_user(inv: Inventory, name: str) -> str:
    return inv.hosts[name].ssh_user or inv.ssh.user


def ignore_peers(inv: Inventory, name: str) -> list[str]:
    """Peers whose connections to a serve port are not activity: the gateway host
    (its health probes keep a connection open; what it forwards shows in the
    engine's state) and this host itself (the check's own requests)."""
    hosts = [name] + ([inv.gateway.host] if inv.gateway is not None else [])
    out: list[str] = []
    for h in hosts:
        for addr in (inv.hosts[h].address, inv.hosts[h].overlay_ip):
            if addr is not None and str(addr) not in out:
                out.append(str(addr))
    return out


def config(inv: Inventory, name: str) -> dict[str, Any]:
    """What /etc/hearth/idle.json holds for this host."""
    host = inv.hosts[name]
    serves = [{"name": s.name, "engine": s.engine, "port": s.listen_port,
               "address": str(host.overlay_ip or host.address)}
              for s in host.serves if s.engine in ENGINES]
    return {
        "host": name,
        "idle_minutes": host.sleep.idle_minutes,
        "automation_user": automation_user(inv, name),
        "serves": serves,
        # Ollama's request log is read from this unit's journal (requests answered between checks)
        "ollama_unit": OLLAMA_UNIT if any(s["engine"] == "ollama" for s in serves) else None,
        "ignore_peers": ignore_peers(inv, name),
        "state": STATE,
    }


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not applies(inv, name):
        return []
    minutes = inv.hosts[name].sleep.idle_minutes
    return [
        ConfigFile(dest=SCRIPT, template="sleep/hearth-idle.py.j2", mode="0755"),
        ConfigFile(dest=CONFIG, template="sleep/idle.json.j2",
                   context={"config": json.dumps(config(inv, name), indent=2, sort_keys=True)}),
        ConfigFile(dest=SERVICE, template="sleep/hearth-idle.service.j2",
                   context={"script": SCRIPT, "config": CONFIG, "idle_minutes": minutes}),
        ConfigFile(dest=TIMER, template="sleep/hearth-idle.timer.j2", context={"interval_s": interval_s(minutes)}),
    ]
