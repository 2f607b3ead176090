"""Role ollama: the Ollama server on hosts that serve `engine: ollama` models.

The release tarball is downloaded from `ollama_url` and checked against
`ollama_sha256` (per architecture) before anything is unpacked; the unit's
environment (KEEP_ALIVE, MAX_LOADED_MODELS, NUM_PARALLEL, host binding on the
overlay) comes from the inventory via hearth.configs.ollama; each served model is
pulled once.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from hearth.configs import ollama as configs
from hearth.facts.ollama import OllamaModelInfo
from hearth.inventory import Inventory, Serve, load_cached
from hearth.operations import archive
from hearth.operations import ollama as ollama_ops
from hearth.planner import modelinfo
from hearth.planner.catalogue import find_arch


def release(arch: str) -> tuple[str, str, str]:
    """(version, url, sha256) of the Ollama release for this architecture."""
    version = str(host.data.ollama_version)
    url = str(host.data.ollama_url).format(version=version, arch=arch)
    sha256 = (host.data.ollama_sha256 or {}).get(arch)
    if not sha256:
        raise ValueError(
            f"ollama_sha256 has no checksum for {arch}: set settings.ollama_sha256.{arch} in the inventory "
            f"to the sha256 of {url} (Ollama publishes sha256sum.txt with each release)"
        )
    return version, url, sha256


@deploy("ollama")
def apply_ollama() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    version, url, sha256 = release(inv.hosts[name].arch)
    install = f"/opt/ollama/{version}-{sha256[:12]}"
    tarball = f"/var/cache/hearth/ollama-{version}-{sha256[:12]}.tgz"

    server.group(name="Group ollama", group="ollama", system=True)
    server.user(name="User ollama (system, no login)", user="ollama", group="ollama", system=True,
                home="/var/lib/ollama", shell="/usr/sbin/nologin")
    files.directory(name="Model store", path=configs.MODELS, user="ollama", group="ollama", mode="0750")
    files.directory(name="Download cache", path="/var/cache/hearth", mode="0755")
    files.download(name=f"Download Ollama {version} (sha256 checked)", src=url, dest=tarball,
                   sha256sum=sha256)
    archive.unpacked(name=f"Unpack Ollama {version}", src=tarball, dest=install,
                     creates=f"{install}/bin/ollama")
    binary = files.link(name="ollama on PATH", path=configs.BINARY, target=f"{install}/bin/ollama")

    (unit_file,) = configs.host_files(inv, name)
    unit = files.put(name="Ollama unit (environment from the inventory)", src=StringIO(unit_file.render()),
                     dest=unit_file.dest, mode=unit_file.mode)
    systemd.daemon_reload(name="Reload systemd (unit changed)", _if=unit.did_change)
    systemd.service(name="Ollama enabled and running", service="ollama", enabled=True, running=True)
    systemd.service(name="Restart Ollama (unit or binary changed)", service="ollama", restarted=True,
                    _if=any_changed(unit, binary))

    address = configs.listen_address(inv, name)
    for serve in configs.ollama_serves(inv, name):
        ollama_ops.model_pulled(name=f"Model {serve.model} pulled", model=serve.model, address=address)
        report_model_drift(inv, name, serve, address)


def report_model_drift(inv: Inventory, name: str, serve: Serve, address: str) -> None:
    """A model Ollama already has is compared with the numbers the plan used (/api/show)."""
    info = host.get_fact(OllamaModelInfo, address=address, model=serve.model)
    found = find_arch(serve.arch, serve.model, inv.models)
    if not info or found is None:
        return
    drifts = modelinfo.compare(found[1], info)
    if drifts:
        logger.warning(modelinfo.drift_line(name, serve.model, found[0], drifts))


apply_ollama()
