"""Ollama's files: one systemd unit whose environment comes from the inventory.

One Ollama server per host serves every `engine: ollama` model of that host, so
its server-wide settings (port, loaded-model cap) are shared by them (validation
refuses serves that disagree); ``keep_alive`` is per model (the gateway sends it). Ollama binds one address: the host's
overlay IP, never the LAN.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from hearth.configs import ConfigFile
from hearth.configs.vllm import systemd_quote
from hearth.inventory import Inventory, Serve
from hearth.planner.ollama_server import max_loaded_models

UNIT = "/etc/systemd/system/ollama.service"
RESUME_UNIT = "/etc/systemd/system/hearth-nvidia-uvm-resume.service"
WARM_SERVICE = "hearth-ollama-warm.service"
WARM_UNIT = f"/etc/systemd/system/{WARM_SERVICE}"
WARM_WAIT_S = 120  # after each Ollama start: how long the warm loader waits for its API
WARM_LOAD_S = 600  # one model's load (read from disk into the GPU), as ollama.model_loaded allows
CURL = "/usr/bin/curl"  # group_data/all.py's base_packages install it on every Linux host
BINARY = "/usr/local/bin/ollama"
MODELS = "/var/lib/ollama/models"
INSTALLS = "/opt/ollama"
CACHE = "/var/cache/hearth"
DEFAULT_KEEP_ALIVE = "5m"  # Ollama's own default
# OLLAMA_KV_CACHE_TYPE takes f16, q8_0 and q4_0: ollama/ollama v0.14.0, fs/ggml/ggml.go
# GGML.SupportsKVCacheType (llm/server.go passes nothing else on: the model runs f16) and
# docs/faq.md "How can I set the quantization type for the K/V cache?". The serve's
# kv_cache_dtype -> what hearth writes (auto: nothing, Ollama's f16 default).
OLLAMA_KV_CACHE_TYPES: dict[str, str] = {"fp16": "f16", "f16": "f16", "q8_0": "q8_0", "q4_0": "q4_0"}
OLLAMA_KV_CACHE_SOURCE = "ollama/ollama v0.14.0 fs/ggml/ggml.go: SupportsKVCacheType; docs/faq.md"

# What Ollama's own install.sh leaves (https://github.com/ollama/ollama, scripts/install.sh):
# the release unpacked into /usr/local (bin/ollama a regular file, lib/ollama beside it)
# and a user `ollama` whose home /usr/share/ollama holds the models.
INSTALL_SH_LIBS = "/usr/local/lib/ollama"
INSTALL_SH_MODELS = "/usr/share/ollama/.ollama/models"


def takeover_stop(heal_units: list[str]) -> str:
    """The command that stops install.sh's Ollama whatever its state (running, or between two
    of its Restart=always attempts; a binary without install.sh's unit has none to stop),
    after ``heal_units`` (the healing timer and a pass of it, where the host has them): install.sh's
    Ollama listens on loopback, so a healing pass finds it down on the overlay and could start it
    again between the stop and the change of its user (usermod: "user ollama is currently used
    by process ...")."""
    ollama = "if systemctl cat ollama.service >/dev/null 2>&1; then systemctl stop ollama.service; fi"
    return f"systemctl stop {' '.join(heal_units)} && {ollama}" if heal_units else ollama

# Linux release assets are zstd tarballs from v0.14.0 on (`ollama-linux-amd64.tar.zst`,
# `ollama-linux-amd64-rocm.tar.zst`), gzip tarballs before (`ollama-linux-amd64.tgz`);
# see https://github.com/ollama/ollama/releases/tag/v0.14.0 and ai-action/setup-ollama#367.
ZSTD_SINCE = (0, 14, 0)
RELEASE_URL = "https://github.com/ollama/ollama/releases/download/v{version}/{asset}"
# GPU add-on archives unpacked over the main one, by GPU vendor: the main tarball
# carries the CUDA libraries; AMD needs the ROCm add-on (amd64 only).
ADDONS = {"amd": "rocm"}
ADDON_ARCHES = {"rocm": {"amd64"}}


def version_key(version: str) -> tuple[int, ...]:
    """``0.14.0`` -> (0, 14, 0); a suffix (``-rc1``, ``-standin``) is ignored."""
    match = re.match(r"v?(\d+(?:\.\d+)*)", version.strip())
    if not match:
        raise ValueError(f"ollama_version {version!r} is not a version number like 0.14.0")
    return tuple(int(part) for part in match.group(1).split("."))


def archive_ext(version: str) -> str:
    """The release's archive format for this version."""
    key = version_key(version)
    key += (0,) * (3 - len(key))
    return ".tar.zst" if key >= ZSTD_SINCE else ".tgz"


@dataclass(frozen=True)
class Asset:
    """One release archive: what it is called, where it comes from, its checksum, its cached copy."""

    flavour: str  # "" for the main archive, "rocm" for the ROCm add-on
    name: str
    url: str
    sha256: str
    cached: str


def gpu_addons(inv: Inventory, name: str) -> list[str]:
    """The add-on archives this host's GPUs need (``rocm`` for an AMD GPU)."""
    host = inv.hosts[name]
    wanted = sorted({ADDONS[gpu.vendor] for gpu in host.gpus if gpu.vendor in ADDONS})
    for addon in wanted:
        if host.arch not in ADDON_ARCHES[addon]:
            raise ValueError(f"hosts.{name}: Ollama publishes no {addon} add-on for {host.arch} "
                             f"(only {', '.join(sorted(ADDON_ARCHES[addon]))})")
    return wanted


def release_assets(version: str, arch: str, url_template: str, sha256s: dict[str, str],
                   addons: list[str]) -> list[Asset]:
    """The archives to download for ``version`` on ``arch``: the main one first, then add-ons.

    ``url_template`` may use ``{version}``, ``{arch}``, ``{asset}`` (the archive's
    file name) and ``{ext}``; checksums are keyed by ``arch`` and ``arch-addon``.
    """
    ext = archive_ext(version)
    if "{asset}" not in url_template:
        if addons:
            raise ValueError(f"ollama_url {url_template!r} must name the archive as {{asset}}: "
                             f"this host also needs the {', '.join(addons)} add-on")
        if url_template.endswith((".tgz", ".tar.zst")) and not url_template.endswith(ext):
            raise ValueError(f"ollama_url {url_template!r}: Ollama {version} is released as {ext} "
                             f"(zstd from 0.14.0 on, gzip before); use {{asset}} or {{ext}} in the URL")
    assets = []
    for flavour in ["", *addons]:
        stem = f"ollama-linux-{arch}" + (f"-{flavour}" if flavour else "")
        key = f"{arch}-{flavour}" if flavour else arch
        sha = sha256s.get(key)
        url = url_template.format(version=version, arch=arch, asset=stem + ext, ext=ext)
        if not sha:
            raise ValueError(f"ollama_sha256 has no checksum for {key}: set settings.ollama_sha256.{key} "
                             f"in the inventory to the sha256 of {url} (Ollama publishes sha256sum.txt "
                             f"with each release)")
        assets.append(Asset(flavour, stem + ext, url, sha, ""))
    ident = install_id(version, [asset.sha256 for asset in assets])
    return [Asset(a.flavour, a.name, a.url, a.sha256,
                  f"{CACHE}/ollama-{ident}" + (f"-{a.flavour}" if a.flavour else "") + ext) for a in assets]


def install_id(version: str, sha256s: list[str]) -> str:
    """``<version>-<12 hex>``: one install folder per version and set of archives."""
    digest = sha256s[0] if len(sha256s) == 1 else hashlib.sha256("".join(sha256s).encode()).hexdigest()
    return f"{version}-{digest[:12]}"


def install_dir(assets: list[Asset], version: str) -> str:
    return f"{INSTALLS}/{install_id(version, [asset.sha256 for asset in assets])}"


def prune(installs: list[str], cached: list[str], current: str) -> tuple[list[str], list[str]]:
    """Installs and cached archives to delete: all but ``current`` and the previous version.

    ``installs`` are folder names under /opt/ollama (``<version>-<id>``, maybe a
    leftover ``.partial``), ``cached`` file names under /var/cache/hearth; the
    previous version is the highest other complete install (the one to go back to).
    """
    complete = [name for name in installs if not name.endswith(".partial") and name != current]
    keep = {current, f"{current}.partial"}  # the unpack starts its own temporary folder afresh
    if complete:
        keep.add(max(complete, key=lambda name: (version_key(name), name)))
    stale_installs = sorted(name for name in installs if name not in keep)
    stale_cached = sorted(name for name in cached if name.startswith("ollama-")
                          and not any(name.startswith(f"ollama-{kept}") for kept in keep))
    return stale_installs, stale_cached


def nvidia(inv: Inventory, name: str) -> bool:
    return any(gpu.vendor == "nvidia" for gpu in inv.hosts[name].gpus)


def ollama_serves(inv: Inventory, name: str) -> list[Serve]:
    return [serve for serve in inv.hosts[name].serves if serve.engine == "ollama"]


def listen_address(inv: Inventory, name: str) -> str:
    """HOST:PORT Ollama listens on (the overlay address)."""
    serves = ollama_serves(inv, name)
    return f"{inv.hosts[name].overlay_ip}:{serves[0].listen_port}"


def host_keep_alive(serves: list[Serve]) -> str:
    """The server's OLLAMA_KEEP_ALIVE: the shortest ``keep_alive`` of its models.

    The gateway sends each model's own ``keep_alive`` with every request it forwards
    (hearth/gateway/ollama.py), so the server's value only governs requests that do not
    come through the gateway (``ollama run`` on the box): those never hold the card
    longer than any of its models asks ("0" on a box that sleeps). Unset everywhere:
    Ollama's own default, 5m.
    """
    from hearth.gateway.ollama import keep_alive_seconds

    set_ = [s.keep_alive for s in serves if s.keep_alive is not None]
    return min(set_, key=keep_alive_seconds) if set_ else DEFAULT_KEEP_ALIVE


def warm_serves(inv: Inventory, name: str) -> list[Serve]:
    """The host's Ollama models kept loaded for good (``keep_alive`` negative): the
    deploy loads them, and the gateway again after a wake."""
    from hearth.gateway.ollama import FOREVER, keep_alive_seconds

    return [s for s in ollama_serves(inv, name)
            if s.keep_alive is not None and keep_alive_seconds(s.keep_alive) == FOREVER]


def api_keep_alive(serve: Serve) -> int:
    """The ``keep_alive`` to send Ollama for ``serve`` as the gateway does: whole seconds, -1 = for good
    (Ollama's API reads a number as seconds and a negative one as forever; a string must be a Go duration)."""
    from hearth.gateway.ollama import api_keep_alive as api_value
    from hearth.gateway.ollama import keep_alive_seconds

    return api_value(keep_alive_seconds(serve.keep_alive if serve.keep_alive is not None else DEFAULT_KEEP_ALIVE))


def exec_line(argv: list[str]) -> str:
    """A command line for ExecStart=/ExecStartPre=, each argument quoted as systemd reads it back."""
    return " ".join(systemd_quote(arg) for arg in argv)


def warm_wait_command(address: str) -> list[str]:
    """curl, retried once a second for at most WARM_WAIT_S seconds, until Ollama's API answers at ``address``."""
    return [CURL, "--silent", "--fail", "--output", "/dev/null", "--max-time", "5",  # quiet while it waits
            "--retry", str(WARM_WAIT_S), "--retry-delay", "1", "--retry-max-time", str(WARM_WAIT_S),
            "--retry-all-errors", f"http://{address}/api/version"]


def warm_load_command(address: str, serve: Serve) -> list[str]:
    """curl loading ``serve`` with its keep_alive and no prompt (a load, no generation, as
    ollama.model_loaded does), printing one line: the model, its keep_alive, Ollama's answer."""
    body = json.dumps({"model": serve.model, "keep_alive": api_keep_alive(serve)})
    said = f"load {serve.model} (keep_alive {serve.keep_alive}): HTTP %{{http_code}} in %{{time_total}}s\\n"
    return [CURL, "--silent", "--show-error", "--fail", "--output", "/dev/null", "--max-time", str(WARM_LOAD_S),
            "--write-out", said, "--header", "Content-Type: application/json", "--data", body,
            f"http://{address}/api/generate"]


def warm_unit(inv: Inventory, name: str) -> ConfigFile | None:
    """The unit that loads the host's warm models at every start of Ollama; None without warm models."""
    serves = warm_serves(inv, name)
    if not serves:
        return None
    address = listen_address(inv, name)
    return ConfigFile(
        dest=WARM_UNIT,
        template="ollama/hearth-ollama-warm.service.j2",
        context={
            "models": ", ".join(serve.model for serve in serves),
            "wait": exec_line(warm_wait_command(address)),
            "loads": [exec_line(warm_load_command(address, serve)) for serve in serves],
            "timeout_s": WARM_WAIT_S + WARM_LOAD_S * len(serves) + 30,
            "ip": inv.hosts[name].overlay_ip,
        },
    )


def environment(inv: Inventory, name: str) -> dict[str, str]:
    """OLLAMA_* settings from the inventory.

    KEEP_ALIVE=0 unloads a model right after its answer so a sleeping box can sleep;
    NUM_PARALLEL is the slot count the gateway's concurrency cap matches; a
    quantised KV cache needs flash attention.
    """
    serves = ollama_serves(inv, name)
    env = {
        "OLLAMA_HOST": listen_address(inv, name),
        "OLLAMA_MODELS": MODELS,
        "OLLAMA_KEEP_ALIVE": host_keep_alive(serves),
        "OLLAMA_MAX_LOADED_MODELS": str(max_loaded_models(inv.hosts[name])),  # always said: planned with it
        "OLLAMA_NUM_PARALLEL": str(max(serve.slots for serve in serves)),
        "OLLAMA_CONTEXT_LENGTH": str(max(serve.context for serve in serves)),
    }
    kv_types = {OLLAMA_KV_CACHE_TYPES[s.kv_cache_dtype] for s in serves if s.kv_cache_dtype != "auto"}
    if kv_types:  # server-wide: validation lets one value through per host
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
    """The Ollama unit; on a sleeping NVIDIA host also the unit that reloads nvidia_uvm on resume;
    with warm models the unit that loads them at every start of Ollama (``warm_unit``)."""
    if not ollama_serves(inv, name) or inv.hosts[name].os != "linux":
        return []
    files = [
        ConfigFile(
            dest=UNIT,
            template="ollama/ollama.service.j2",
            context={
                "binary": BINARY,
                "environment": environment(inv, name),
                "after": unit_ordering(inv),
                # NoNewPrivileges=true stops the setuid nvidia-modprobe Ollama would
                # use to create /dev/nvidia-uvm: load the module as root first.
                "nvidia_uvm": nvidia(inv, name),
            },
        )
    ]
    if nvidia(inv, name) and inv.hosts[name].sleep.sleeps:
        files.append(ConfigFile(dest=RESUME_UNIT, template="ollama/hearth-nvidia-uvm-resume.service.j2"))
    warm = warm_unit(inv, name)
    return files + ([warm] if warm else [])
