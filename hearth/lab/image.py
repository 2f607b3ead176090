"""The machines' base image: Debian 12 built by mmdebstrap, cached by content hash.

mmdebstrap resolves and downloads with apt (in parallel), where debootstrap fetches one
package at a time and resolves in shell: the same image in 22-28 s instead of 50-78 s
here. Its ``merged-usr`` hook makes /usr merged the way Debian 12's installer and
debootstrap do (``usr-is-merged``, not the ``usrmerge`` package and the perl it pulls in).

The cache key covers the suite, mirror, package list, automation user and the
customisation recipe, so a change to any of them builds a new image; a cold
cache always works (the cache is a speed-up, never a dependency).
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hearth.lab.sh import LabError, run, step
from hearth.lab.state import flock_held

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What a freshly installed host has, plus what makes the roles fast (pre-baked:
# nftables, wireguard-tools, wireguard-go, chrony). docs/lab.md lists them.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server", "python3",
    "sudo", "iproute2", "ca-certificates", "curl", "gnupg", "nftables",
    "wireguard-tools", "wireguard-go", "chrony", "procps", "iputils-ping", "less",
)  # fmt: skip

# `systemctl suspend` inside a machine: logind checks that /sys/power/state is
# writable (the machine gets a bind-mounted stand-in file), and the suspend service
# tells the lab's power controller through the control directory instead of
# writing to the kernel. The controller then powers the machine off ("asleep").
SUSPEND_DROPIN = """\
# hearth lab: suspending a lab machine asks the lab's power controller to power it off.
[Service]
ExecStart=
ExecStart=/bin/sh -c 'date +%%s > /run/hearth-lab/suspend-requested'
"""

RECIPE = """\
set -eu
id -u {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {user}
echo '{user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-hearth-lab
chmod 0440 /etc/sudoers.d/90-hearth-lab
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/systemd-suspend.service.d
: > /etc/machine-id
printf '# hearth lab: no DNS on the lab LAN; apt goes through the lab proxy\\n' > /etc/resolv.conf
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
"""


MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"  # shipped with Debian's mmdebstrap


def build_argv(work: Path, arch: str) -> list[str]:
    """The mmdebstrap command line that builds the base image for ``arch`` into ``work``."""
    return [
        "mmdebstrap", "--variant=minbase", f"--architectures={arch}", f"--hook-dir={MERGED_USR_HOOKS}",
        f"--include={','.join(PACKAGES)}", SUITE, str(work), MIRROR,
    ]  # fmt: skip


def build_key(user: str, arch: str, argv: list[str]) -> str:
    """Content hash naming an image built by ``argv`` (its target written ``TARGET``) from the recipe."""
    text = "\n".join([image_key(user, arch), shlex.join(argv)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_image_key(user: str, arch: str = "amd64") -> str:
    """Content hash naming the cached base image: the recipe and the build's command line."""
    return build_key(user, arch, build_argv(Path("TARGET"), arch))


def image_key(user: str, arch: str = "amd64") -> str:
    """Content hash naming the cached image (amd64 keeps its historical key)."""
    parts = [SUITE, MIRROR, " ".join(PACKAGES), user, RECIPE, SUSPEND_DROPIN]
    text = "\n".join(parts + ([arch] if arch != "amd64" else []))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Hold the image cache's lock while images are looked up and built.

    Two labs may share one cache (``make test`` runs both lab shapes at once): the
    second to arrive waits for the first's build and then reuses its images, instead
    of building into the same ``.build-*`` directory.
    """
    with flock_held(cache_dir / ".lock", "another lab's image build"):
        yield


def ensure_base_image(cache_dir: Path, user: str, arch: str = "amd64") -> Path:
    """Return the cached base image directory for ``arch``, building it first if absent."""
    suffix = "" if arch == "amd64" else f"-{arch}"
    target = cache_dir / f"base{suffix}-{base_image_key(user, arch)}"
    if (target / "etc" / "os-release").exists():
        print(f"--> Reuse cached base image {target}", flush=True)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = cache_dir / f".build-{target.name}"
    remove_build_dir(work)
    with step(f"Build {arch} base image {target.name} (mmdebstrap {SUITE}, {len(PACKAGES)} packages)"):
        run(build_argv(work, arch), timeout=1800)  # native: this box's own architecture
        customise(work, user)
        work.rename(target)
    return target


def ensure_derived_image(target: Path, base: Path, script: str, *, what: str, adds: str,
                         built: Callable[[Path], object], missing: str, timeout_s: float) -> Path:
    """``target``: a copy of the cached image ``base`` with ``script`` run in it, built once.

    Reused when ``built(target)`` holds. Else built (a plan step "Build ``what``
    <name> (``adds``)") in ``.build-<name>`` beside it: a
    copy of ``base``, ``script`` run in a chroot (with this machine's resolv.conf, so
    apt can download; the image's own is put back after), checked with ``built``
    (LabError ``missing`` if it does not hold), then renamed into place: a failed or
    interrupted build never leaves a ``target``. ``target``'s name is the caller's
    content hash (base image + recipe).
    """
    if built(target):
        print(f"--> Reuse cached {what} {target}", flush=True)
        return target
    work = target.with_name(f".build-{target.name}")
    remove_build_dir(work)
    with step(f"Build {what} {target.name} ({adds})"):
        run(["cp", "-a", "--reflink=auto", str(base), str(work)])
        resolv = work / "etc/resolv.conf"
        lab_resolv = resolv.read_text()
        resolv.unlink()
        shutil.copy("/etc/resolv.conf", resolv)  # the chroot downloads packages
        try:
            run(["chroot", str(work), "/bin/sh", "-c", script], timeout=timeout_s)
        finally:
            resolv.write_text(lab_resolv)
        if not built(work):
            raise LabError(f"{work}: {missing}")
        work.rename(target)
    return target


def remove_build_dir(work: Path) -> None:
    """Remove an unfinished build, unmounting what an interrupted build left (/proc)."""
    if not work.exists():
        return
    prefix = f"{work.resolve()}/"
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for mount in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", mount], check=False)
    shutil.rmtree(work)


def customise(root: Path, user: str) -> None:
    """Add the automation user, sudo, the suspend drop-in; empty machine-id and apt lists."""
    if not (root / "usr" / "sbin" / "sshd").exists():
        raise LabError(f"the image build left no sshd in {root}")
    run(["chroot", str(root), "/bin/sh", "-c", RECIPE.format(user=user)])
    dropin = root / "etc/systemd/system/systemd-suspend.service.d/hearth-lab.conf"
    dropin.write_text(SUSPEND_DROPIN)
