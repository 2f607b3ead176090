"""The arm64 lab image: the arm64 base image with a native (amd64) ``nft`` in it.

An arm64 lab machine is an emulated container: its binaries run through
qemu-user, which passes only some netlink families to the host kernel (route,
audit, uevent), not netfilter. The arm64 ``nft`` therefore cannot talk to the
kernel ("Unable to initialize Netlink socket: Protocol not supported") and the
firewall role could not converge on an arm64 machine.

The container runs on this amd64 kernel, so an amd64 ``nft`` runs natively inside
it and its netlink reaches the kernel directly: the machine's own network
namespace gets the ruleset, enforced by the host kernel like any container's.
This image is the arm64 base image plus, in the lab image only:

* ``dpkg --add-architecture amd64`` and the amd64 libraries ``nft`` links
  against (``libnftables1:amd64``, ``libedit2:amd64`` and what they pull in, all
  ``Multi-Arch: same``, so they sit beside their arm64 twins at the same version);
* a local ``dpkg-divert`` of ``/usr/sbin/nft`` to ``/usr/sbin/nft.arm64`` and the
  amd64 package's ``nft`` binary at ``/usr/sbin/nft``.

The arm64 ``nftables`` package the firewall role installs stays installed and
upgradable (its ``/usr/sbin/nft`` lands on the diverted path), so the role is
unchanged and runs as on a real Pi; only the binary that talks to the kernel is
the amd64 build. Cached beside the base image under a hash of the base image's
name and this recipe.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hearth.lab.image import ensure_derived_image

NFT = "/usr/sbin/nft"
NFT_DIVERTED = "/usr/sbin/nft.arm64"
NATIVE_ARCH = "amd64"
NATIVE_LIBS = ("libnftables1:amd64", "libedit2:amd64")

NFT_RECIPE = """\
set -eu
export DEBIAN_FRONTEND=noninteractive
dpkg --add-architecture {arch}
apt-get update -qq
apt-get install -y -qq --no-install-recommends {libs} >/dev/null
tmp=$(mktemp -d)
cd "$tmp"
apt-get download -qq nftables:{arch}
dpkg-deb -x nftables_*_{arch}.deb x
dpkg-divert --local --rename --divert {diverted} --add {nft}
install -m 0755 x/usr/sbin/nft {nft}
cd /
rm -rf "$tmp"
{nft} --version >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
"""


def recipe() -> str:
    return NFT_RECIPE.format(arch=NATIVE_ARCH, libs=" ".join(NATIVE_LIBS), nft=NFT, diverted=NFT_DIVERTED)


def arm64_image_key(base: Path) -> str:
    """Content hash naming the cached arm64 lab image (covers the base image it starts from)."""
    return hashlib.sha256("\n".join([base.name, recipe()]).encode()).hexdigest()[:16]


def ensure_arm64_lab_image(cache_dir: Path, base: Path) -> Path:
    """The cached arm64 lab image (``base`` + the native nft), built if absent."""
    return ensure_derived_image(
        cache_dir / f"arm64nft-{arm64_image_key(base)}", base, recipe(), what="arm64 lab image",
        adds=f"base image + the {NATIVE_ARCH} nft, dpkg-diverted",
        built=lambda image: (image / NFT_DIVERTED.lstrip("/")).exists(),
        missing=f"{NFT} was not diverted to {NFT_DIVERTED}", timeout_s=2400)
