"""Ollama's files: one systemd unit whose environment comes from the inventory.

One Ollama server per host serves every `engine: ollama` model of that host, so
its server-wide settings (port, keep-alive, loaded-model cap) are shared by them
(validation refuses serves that disagree). Ollama binds one address: the host's
overlay IP, never the LAN.
"""

from __future__ import annotations

from typing import Any

from hearth.configs import ConfigFile
from hearth.inventory import Inventory, Serve

UNIT = "/etc/systemd/system/ollama.service"
BINARY = "/usr/local/bin/ollama"
MODELS = "/var/lib/ollama/models"
DEFAULT_KEEP_ALIVE = "5m"  # Ollama's own default


def ollama_serves(inv: Inventory, name: str) -> list[Serve]:
    return [serve for serve in inv.hosts[name].serves if serve.engine == "ollama"]


def listen_address(inv: Inventory, name: str) -> str:
    """HOST:PORT Ollama listens on (the overlay address)."""
    serves = ollama_serves(inv, name)
    return f"{inv.hosts[name].overlay_ip}:{serves[0].listen_port}"


def environment(inv: Inventory, name: str) -> dict[str, str]:
    """OLLAMA_* settings from the inventory.

    KEEP_ALIVE=0 unloads a model right after its answer so a sleeping box can sleep;
    NUM_PARALLEL is the slot count the gateway's concurrency cap matches; a
    quantised KV cache needs flash attention.
    """
    serves = ollama_serves(inv, name)
    first = serves[0]
    env = {
        "OLLAMA_HOST": listen_address(inv, name),
        "OLLAMA_MODELS": MODELS,
        "OLLAMA_KEEP_ALIVE": first.keep_alive or DEFAULT_KEEP_ALIVE,
        "OLLAMA_MAX_LOADED_MODELS": str(first.max_loaded_models or len(serves)),
        "OLLAMA_NUM_PARALLEL": str(max(serve.slots for serve in serves)),
        "OLLAMA_CONTEXT_LENGTH": str(max(serve.context for serve in serves)),
    }
    kv_types = {serve.kv_cache_dtype for serve in serves} - {"auto"}
    if kv_types:
        env["OLLAMA_KV_CACHE_TYPE"] = sorted(kv_types)[0]
        env["OLLAMA_FLASH_ATTENTION"] = "1"
    for serve in serves:
        env.update(serve.env)
    return env


def unit_ordering(inv: Inventory) -> list[str]:
    """Ollama binds the overlay address, so it starts after the overlay is up."""
    if inv.overlay.kind == "wireguard":
        return [f"wg-quick@{inv.overlay.interface}.service"]
    return []


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not ollama_serves(inv, name) or inv.hosts[name].os != "linux":
        return []
    return [
        ConfigFile(
            dest=UNIT,
            template="ollama/ollama.service.j2",
            context={
                "binary": BINARY,
                "environment": environment(inv, name),
                "after": unit_ordering(inv),
            },
        )
    ]
