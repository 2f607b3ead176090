"""k3s install: the release binary (and optionally the air-gap images), sha256-checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyinfra.api.operation import OperationMeta

from hearth.configs import k3s as configs
from hearth.inventory import Inventory
from hearth.operations import k3s


def apply(inv: Inventory, name: str, settings: dict[str, Any]) -> OperationMeta:
    arch = inv.hosts[name].arch
    version, url, sha256 = configs.release(inv, name, settings)
    asset = configs.asset(arch, settings)
    airgap = str(settings.get("k3s_airgap_dir") or "")
    local = str(Path(airgap).expanduser() / asset) if airgap else None
    source = f"from {airgap}" if airgap else "downloaded"
    binary = k3s.verified_file(name=f"k3s {version} {asset} ({source}, sha256 checked before use)",
                               src=url, sha256=sha256, dest=configs.BINARY, local=local)
    if settings.get("k3s_airgap_images"):
        images = str(settings["k3s_images_asset"]).format(arch=arch, version=version)
        images_sha = (settings.get("k3s_images_sha256") or {}).get(arch)
        if not images_sha:
            raise ValueError(f"k3s_airgap_images is on but k3s_images_sha256 has no checksum for {arch} "
                             f"(host {name}): set settings.k3s_images_sha256.{arch}")
        k3s.verified_file(name=f"k3s images {images} ({source}, sha256 checked)",
                          src=str(settings["k3s_url"]).format(version=version, asset=images, arch=arch),
                          sha256=str(images_sha), dest=f"{configs.IMAGES}/{images}", mode="0644",
                          local=str(Path(airgap).expanduser() / images) if airgap else None)
    return binary
