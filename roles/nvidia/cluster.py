"""On the k3s servers when the inventory has NVIDIA hosts: the device plugin (and, where k3s
does not ship one, the `nvidia` RuntimeClass) in k3s's auto-deploy manifests folder."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import nvidia as configs
from hearth.inventory import load_cached
from hearth.operations import config_files, paths


@deploy("nvidia")
def cluster_manifests() -> None:
    inv = load_cached(host.data.hearth_inventory)
    wanted = {cf.dest: cf for cf in configs.cluster_files(inv)}
    if wanted:
        paths.directory(name="k3s auto-deploy manifests folder", path=configs.MANIFESTS, mode="0700")
    for dest in (configs.DEVICE_PLUGIN, configs.RUNTIME_CLASS):
        cf = wanted.get(dest)
        label = Path(dest).name
        if cf is None:
            why = "k3s ships the nvidia RuntimeClass" if wanted else "no NVIDIA hosts"
            paths.file(name=f"{label} absent ({why})", path=dest, present=False)
        else:
            config_files.put(name=f"{label} (k3s applies it)", src=StringIO(cf.render()), dest=dest, mode=cf.mode)


cluster_manifests()
