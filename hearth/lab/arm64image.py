"""The arm64 lab image, built by ``mmdebstrap`` in one go, with a native (amd64) ``nft``.

**Why mmdebstrap.** ``debootstrap --arch=arm64`` runs its whole second stage in the
emulator: its own shell and perl resolve dependencies over the 49 MB arm64
``Packages`` file, thousands of emulated process starts, over 30 minutes on this
2-core box under load (docs/lab.md, "Where a cold arm64 image's time goes").
``mmdebstrap`` resolves and downloads with the host's native apt and chroots only
for dpkg and the maintainer scripts, so only those run emulated.

**Merged /usr as Debian 12 has it.** mmdebstrap's ``merged-usr`` hook directory (as
for the amd64 base image) makes the links itself and installs ``usr-is-merged``;
without it apt picks ``usrmerge``, which pulls in perl.

**Why an amd64 nft.** An arm64 lab machine is an emulated container: its binaries
run through qemu-user, which passes only some netlink families to the host kernel
(route, audit, uevent), not netfilter. The arm64 ``nft`` therefore cannot talk to
the kernel ("Unable to initialize Netlink socket: Protocol not supported"). The
container runs on this amd64 kernel, so an amd64 ``nft`` runs natively inside it and
its netlink reaches the kernel directly: the machine's own network namespace gets
the ruleset, enforced by the host kernel like any container's. The same build
therefore has two architectures (``--architectures=arm64,amd64``, arm64 native
inside) and includes, besides the base image's packages:

* the amd64 libraries ``nft`` links against (``libnftables1:amd64``,
  ``libedit2:amd64`` and what they pull in, all ``Multi-Arch: same``, so they sit
  beside their arm64 twins at the same version);
* through a customize hook run on the host: a local ``dpkg-divert`` of
  ``/usr/sbin/nft`` to ``/usr/sbin/nft.arm64`` and the amd64 ``nftables``
  package's ``nft`` binary at ``/usr/sbin/nft``.

**Why no unit credentials.** systemd 252 running under qemu-user cannot set up a
unit's credentials (``LoadCredential=``: "Failed to set up credentials: Invalid
argument"), so systemd-sysctl, -sysusers and -tmpfiles-* would fail at every boot and
the machine would be "degraded" before hearth touched it. A second customize hook
gives exactly the units that load credentials a drop-in resetting the list.

**Why logind keeps the user's manager.** Under qemu-user, stopping ``user@UID.service``
can take systemd's whole stop timeout (its processes seem to survive SIGKILL), and an SSH
login that comes while it stops waits for it: a third hook sets logind's
``UserStopDelaySec=infinity``, so the manager started by the first login stays.

The arm64 ``nftables`` package the firewall role installs stays installed and
upgradable (its ``/usr/sbin/nft`` lands on the diverted path), so the role is
unchanged and runs as on a real Pi; only the binary that talks to the kernel is the
amd64 build. The base image's customisation (automation user, suspend drop-in)
follows as for every image. Cached as ``arm64-<hash>`` under a content hash of the
base image's recipe, this command line and its hooks: change any -> a new image.
"""

from __future__ import annotations

from pathlib import Path

from hearth.lab import image
from hearth.lab.sh import LabError, run, step

NFT = "/usr/sbin/nft"
NFT_DIVERTED = "/usr/sbin/nft.arm64"
NATIVE_ARCH = "amd64"
NATIVE_LIBS = ("libnftables1:amd64", "libedit2:amd64")
BUILD_TIMEOUT_S = 3600  # the emulated dpkg runs: minutes quiet, more on a loaded box

# Run by mmdebstrap on the host after the packages are installed, "$1" the new root.
# apt (with mmdebstrap's config for the root) and dpkg-divert (--root) run natively;
# the last line runs the amd64 nft inside the root, against its amd64 libraries.
NFT_HOOK = """\
set -eu
root="$1"
tmp=$(mktemp -d)
cd "$tmp"
APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get -o APT::Sandbox::User=root download -qq nftables:{arch}
dpkg-deb -x nftables_*_{arch}.deb x
dpkg-divert --root "$root" --local --rename --divert {diverted} --add {nft}
install -m 0755 x/usr/sbin/nft "$root{nft}"
cd /
rm -rf "$tmp"
chroot "$root" {nft} --version >/dev/null
"""


# Run by mmdebstrap on the host after the nft hook, "$1" the new root. Under qemu-user,
# systemd (252) cannot set up a unit's credentials ("Failed to set up credentials:
# Invalid argument", exit 243/CREDENTIALS), so every unit with LoadCredential= would fail
# at boot (systemd-sysctl, -sysusers, -tmpfiles-*): a drop-in resets the list (an empty
# assignment) for exactly those units. A Pi's own kernel runs them as shipped.
CREDENTIALS_HOOK = """\
set -eu
root="$1"
for unit in $(grep -l '^LoadCredential=' "$root"/usr/lib/systemd/system/*.service); do
  dir="$root/etc/systemd/system/$(basename "$unit").d"
  mkdir -p "$dir"
  printf '[Service]\\nLoadCredential=\\n' > "$dir/{dropin}"
done
"""
QEMU_USER_DROPIN = "hearth-lab-qemu-user.conf"  # the name of every drop-in the hooks write

# Run by mmdebstrap on the host after the credentials hook, "$1" the new root. Under
# qemu-user a user's service manager (user@UID.service) does not always stop cleanly:
# systemd may find its processes "still around after final SIGKILL" and wait out its
# whole stop timeout (about 2 minutes; seen twice in about seven logins after idle).
# logind stops it 10 s after the user's last session ends, and an SSH login during such
# a stop waits in pam_systemd until it is over. Once started, the manager is kept
# (logind's UserStopDelaySec); a Pi's own kernel never needs this.
LOGIND_HOOK = """\
set -eu
mkdir -p "$1/etc/systemd/logind.conf.d"
printf '[Login]\\nUserStopDelaySec=infinity\\n' > "$1/etc/systemd/logind.conf.d/{dropin}"
"""


def credentials_hook() -> str:
    """The customize hook that turns off unit credentials, which qemu-user cannot set up."""
    return CREDENTIALS_HOOK.format(dropin=QEMU_USER_DROPIN)


def logind_hook() -> str:
    """The customize hook that keeps a user's service manager once started (see LOGIND_HOOK)."""
    return LOGIND_HOOK.format(dropin=QEMU_USER_DROPIN)


def nft_hook() -> str:
    """The customize hook that puts the native nft in place (shell, ``$1`` = the root)."""
    return NFT_HOOK.format(arch=NATIVE_ARCH, nft=NFT, diverted=NFT_DIVERTED)


def mmdebstrap_argv(work: Path) -> list[str]:
    """The mmdebstrap command line that builds the arm64 lab image into ``work``."""
    return [
        "mmdebstrap", "--variant=minbase", f"--architectures=arm64,{NATIVE_ARCH}",
        f"--hook-dir={image.MERGED_USR_HOOKS}",
        f"--include={','.join(image.PACKAGES + NATIVE_LIBS)}",
        f"--customize-hook={nft_hook()}", f"--customize-hook={credentials_hook()}",
        f"--customize-hook={logind_hook()}",
        image.SUITE, str(work), image.MIRROR,
    ]  # fmt: skip


def arm64_image_key(user: str) -> str:
    """Content hash naming the cached arm64 lab image: base recipe + this build."""
    return image.build_key(user, "arm64", mmdebstrap_argv(Path("TARGET")))


def built(root: Path) -> bool:
    """True when ``root`` is a finished arm64 lab image (a root with the diverted nft)."""
    return (root / "etc/os-release").exists() and (root / NFT_DIVERTED.lstrip("/")).exists()


def ensure_arm64_lab_image(cache_dir: Path, user: str) -> Path:
    """The cached arm64 lab image, built (mmdebstrap, then customised) if absent.

    Built in ``.build-<name>`` beside it and renamed into place only when finished, so
    a failed or interrupted build never leaves an image. The caller holds the cache lock.
    """
    target = cache_dir / f"arm64-{arm64_image_key(user)}"
    if built(target):
        print(f"--> Reuse cached arm64 lab image {target}", flush=True)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = cache_dir / f".build-{target.name}"
    image.remove_build_dir(work)
    what = f"{image.SUITE}, {len(image.PACKAGES)} packages + the {NATIVE_ARCH} nft"
    with step(f"Build arm64 lab image {target.name} (mmdebstrap {what})"):
        run(mmdebstrap_argv(work), timeout=BUILD_TIMEOUT_S)
        if not built(work):
            raise LabError(f"{work}: mmdebstrap left no {NFT_DIVERTED} (the nft hook did not run)")
        image.customise(work, user)
        work.rename(target)
    return target
