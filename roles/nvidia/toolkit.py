"""NVIDIA container toolkit from NVIDIA's apt repository or a mirror (see main.py)."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files

from hearth.configs import nvidia as configs
from hearth.inventory import load_cached
from hearth.operations import apt as apt_ops
from hearth.operations import config_files, paths
from hearth.operations.apt import installed_at_start


@deploy("nvidia")
def apply_toolkit() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    paths.directory(name="apt keyrings folder", path="/etc/apt/keyrings", mode="0755")
    key = files.download(
        name="NVIDIA container toolkit repository key",
        src=str(host.data.nvidia_toolkit_key_url), dest=configs.TOOLKIT_KEY, mode="0644",
        sha256sum=str(host.data.nvidia_toolkit_key_sha256) or None,
    )
    cf = configs.toolkit_sources(inv, name)
    sources = config_files.put(name="NVIDIA container toolkit repository", src=StringIO(cf.render()),
                               dest=cf.dest, mode=cf.mode)  # fmt: skip
    installed = installed_at_start()
    missing = configs.TOOLKIT_PACKAGE not in installed
    apt.update(name="Refresh apt lists (toolkit repository changed or toolkit missing)",
               _if=lambda: missing or key.did_change() or sources.did_change())  # fmt: skip
    apt_ops.installed(name="nvidia-container-toolkit", packages=[configs.toolkit_package(inv, name)],
                      no_recommends=True)  # fmt: skip


apply_toolkit()
