"""Role ollama: the Ollama server on hosts that serve `engine: ollama` models.

The release archives this host needs (the main one, plus the ROCm add-on for an
AMD GPU) are downloaded from `ollama_url` in the release's own format for the
version (.tar.zst from 0.14.0 on, .tgz before) and checked against
`ollama_sha256` before anything is unpacked; they unpack into a temporary folder
renamed into place, and only the previous install is kept besides the current
one. A host set up by Ollama's install.sh is taken over: its binary replaced by a
link, its models moved into hearth's store. The unit's environment comes from the
inventory via hearth.configs.ollama; each served model is pulled once.
"""

from __future__ import annotations

from io import StringIO
from pathlib import PurePosixPath

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Directory, File
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from hearth.configs import ConfigFile
from hearth.configs import heal as heal_configs
from hearth.configs import ollama as configs
from hearth.facts.ollama import DirectoryEntries, OllamaModelInfo
from hearth.inventory import Inventory, Serve, load_cached
from hearth.operations import accounts, archive, config_files, paths, services
from hearth.operations import ollama as ollama_ops
from hearth.operations.apt import packages_installed
from hearth.planner import modelinfo
from hearth.planner.catalogue import find_arch


def prune_old(current: str) -> None:
    """Delete installs and archives beyond the current and the previous version."""
    installs = host.get_fact(DirectoryEntries, path=configs.INSTALLS) or []
    cached = host.get_fact(DirectoryEntries, path=configs.CACHE) or []
    stale_installs, stale_cached = configs.prune(installs, cached, PurePosixPath(current).name)
    for name in stale_installs:
        paths.directory(name=f"Prune old install {name}", path=f"{configs.INSTALLS}/{name}", present=False)
    for name in stale_cached:
        paths.file(name=f"Prune old archive {name}", path=f"{configs.CACHE}/{name}", present=False)


@deploy("ollama")
def apply_ollama() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    version = str(host.data.ollama_version)
    assets = configs.release_assets(version, inv.hosts[name].arch, str(host.data.ollama_url),
                                    dict(host.data.ollama_sha256 or {}), configs.gpu_addons(inv, name))
    install = configs.install_dir(assets, version)
    # Ollama's install.sh leaves a regular file where hearth puts a link, and models in its home.
    install_sh_binary = bool(host.get_fact(File, path=configs.BINARY))
    install_sh_models = bool(host.get_fact(Directory, path=configs.INSTALL_SH_MODELS))

    if configs.archive_ext(version) == ".tar.zst":
        packages_installed("zstd (Ollama >= 0.14 is released as .tar.zst)", ["zstd"])
    takeover = install_sh_binary or install_sh_models
    # A host hearth already heals (install.sh run again on it) has the healing timer: paused meanwhile.
    heal_timer = takeover and bool(host.get_fact(File, path=heal_configs.TIMER))
    if takeover:
        server.shell(name="Stop the Ollama that install.sh set up (taking it over)"
                          + (", and the healing timer meanwhile" if heal_timer else ""),
                     commands=[configs.takeover_stop(heal_configs.UNITS if heal_timer else [])])
    for group in ("render", "video"):  # GPU device nodes (/dev/dri/renderD*, /dev/kfd) belong to these
        accounts.group(name=f"Group {group} (GPU access)", group=group, system=True)
    accounts.group(name="Group ollama", group="ollama", system=True)
    accounts.user(name="User ollama (system, no login, in render and video)", user="ollama", group="ollama",
                  groups=["render", "video"], system=True, home="/var/lib/ollama", shell="/usr/sbin/nologin")
    if install_sh_models:
        ollama_ops.models_adopted(name=f"Models from install.sh's store moved to {configs.MODELS}",
                                  src=configs.INSTALL_SH_MODELS, dest=configs.MODELS)
    paths.directory(name="Model store", path=configs.MODELS, user="ollama", group="ollama", mode="0750")
    paths.directory(name="Download cache", path=configs.CACHE, mode="0755")
    paths.directory(name="Installs", path=configs.INSTALLS, mode="0755")
    for asset in assets:
        files.download(name=f"Download {asset.name} {version} (sha256 checked)", src=asset.url,
                       dest=asset.cached, sha256sum=asset.sha256)
    archive.unpacked(name=f"Unpack Ollama {version} (through a temporary folder)",
                     srcs=[asset.cached for asset in assets], dest=install, creates=f"{install}/bin/ollama")
    binary = files.link(name="ollama on PATH", path=configs.BINARY, target=f"{install}/bin/ollama",
                        force=True, force_backup=False)
    if install_sh_binary:
        paths.directory(name="install.sh's libraries removed (the release brings its own)",
                        path=configs.INSTALL_SH_LIBS, present=False)

    wanted = {config.dest: config for config in configs.host_files(inv, name)}
    unit_file = wanted.pop(configs.UNIT)
    warm_file = wanted.pop(configs.WARM_UNIT, None)
    extra_files = list(wanted.values())
    unit = config_files.put(name="Ollama unit (environment from the inventory)", src=StringIO(unit_file.render()),
                            dest=unit_file.dest, mode=unit_file.mode)
    extras = [config_files.put(name=f"Unit {PurePosixPath(extra.dest).name} (reload nvidia_uvm after resume)",
                               src=StringIO(extra.render()), dest=extra.dest, mode=extra.mode) for extra in extra_files]
    warm = warm_loader(warm_file)
    systemd.daemon_reload(name="Reload systemd (a unit changed)", _if=any_changed(unit, *extras, warm))
    for extra in extra_files:
        services.service(name=f"{PurePosixPath(extra.dest).name} enabled (runs on resume)",
                         service=PurePosixPath(extra.dest).name, running=False, enabled=True)
    services.service(name="Ollama enabled and running", service="ollama", enabled=True, running=True)
    systemd.service(name="Restart Ollama (unit or binary changed)", service="ollama", restarted=True,
                    _if=any_changed(unit, binary))
    if heal_timer:
        services.service(name="Healing timer running again (paused for the takeover)", service=heal_configs.UNITS[0],
                         running=True)
    prune_old(install)

    address = configs.listen_address(inv, name)
    for serve in configs.ollama_serves(inv, name):
        ollama_ops.model_pulled(name=f"Model {serve.model} pulled", model=serve.model, address=address)
        report_model_drift(inv, name, serve, address)
    if warm_file:  # enabled once the models are pulled: a first deploy's start of Ollama does not run it early
        services.service(name=f"{configs.WARM_SERVICE} enabled (loads the warm models at every start of Ollama)",
                         service=configs.WARM_SERVICE, running=None, enabled=True)
    for serve in configs.warm_serves(inv, name):  # kept warm: loaded now, not at the first request
        ollama_ops.model_loaded(name=f"Model {serve.model} loaded (keep_alive {serve.keep_alive})",
                                model=serve.model, address=address)


def warm_loader(warm_file: ConfigFile | None) -> OperationMeta:
    """The unit that loads the warm models at every start of Ollama, put in place; without
    warm models in the inventory, disabled and removed if a deploy left one."""
    if warm_file:
        return config_files.put(name=f"Unit {configs.WARM_SERVICE} (loads the warm models at every Ollama start)",
                                src=StringIO(warm_file.render()), dest=warm_file.dest, mode=warm_file.mode)
    if host.get_fact(File, path=configs.WARM_UNIT):
        services.service(name=f"{configs.WARM_SERVICE} disabled (no model kept warm)", service=configs.WARM_SERVICE,
                         running=False, enabled=False)
    return paths.file(name=f"No {configs.WARM_SERVICE} (no model kept warm)", path=configs.WARM_UNIT, present=False)


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
