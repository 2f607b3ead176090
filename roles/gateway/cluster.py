"""On the k3s servers: the gateway as an in-cluster Service (+ EndpointSlice) in k3s's
auto-deploy manifests folder, or no such file when the inventory has no gateway."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import gateway_service as configs
from hearth.inventory import load_cached
from hearth.operations import config_files, paths


@deploy("gateway")
def gateway_service() -> None:
    inv = load_cached(host.data.hearth_inventory)
    if not configs.wanted(inv):
        paths.file(name="hearth-gateway Service absent (no gateway in the inventory)",
                   path=configs.MANIFEST, present=False)
        return
    cf = configs.manifest(inv)
    paths.directory(name="k3s auto-deploy manifests folder", path=configs.MANIFESTS, mode="0700")
    config_files.put(name=f"hearth-gateway Service and EndpointSlice (k3s applies them): {configs.url(inv)}",
                     src=StringIO(cf.render()), dest=cf.dest, mode=cf.mode)


gateway_service()
