"""The lab's image cache: which images this checkout boots, which a lab uses, which are stale.

``hearth lab up`` builds each image once and names it by a hash of its recipe
(``base-*``: :mod:`hearth.lab.image`, ``vm-*``: :mod:`hearth.lab.vmimage`, ``arm64-*``:
:mod:`hearth.lab.arm64image`), so a changed recipe builds a new image and leaves the old
one behind (250-700 MB each). ``hearth lab images`` lists them; ``--prune`` removes the
stale ones: not what this checkout would boot, and used by no lab that is up on this
machine (a lab record under the lab roots, or a mount or process naming the image).
Builds that never finished (``.build-*``) are removed too.

Every ``lab up`` notes its root in the cache it boots from (``<cache>/labs/``; ``lab down``
takes the note back), so a lab whose root is anywhere (``HEARTH_LAB_ROOT``) keeps its
images even while all its machines are off, when no mount or process names them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hearth.lab.arm64image import arm64_image_key
from hearth.lab.image import base_image_key, cache_lock, remove_build_dir
from hearth.lab.state import DEFAULT_ROOT, lab_root, load_record, record_path
from hearth.lab.vmimage import vm_image_key

PREFIXES = ("base-", "vm-", "arm64-", ".build-")
LABS = "labs"  # <cache>/labs/<digest of a lab root>: that root, a lab booting from this cache


@dataclass(frozen=True)
class CachedImage:
    """One image directory in the cache: its size, whether this checkout boots it, who uses it."""

    path: Path
    size: int
    current: bool
    used_by: tuple[str, ...]

    @property
    def state(self) -> str:
        """``current``, ``in use`` (by a lab up on this machine) or ``stale``."""
        return "current" if self.current else "in use" if self.used_by else "stale"


def current_names(user: str) -> set[str]:
    """The image names this checkout boots for lab machines whose automation user is ``user``,
    on an amd64 host (its base, VM and emulated arm64 images) or an arm64 one (native base, VM)."""
    bases = [f"base-{base_image_key(user)}", f"base-arm64-{base_image_key(user, 'arm64')}"]
    return {*bases, *(f"vm-{vm_image_key(Path(base))}" for base in bases), f"arm64-{arm64_image_key(user)}"}


def stale_names(cache: Path, user: str) -> list[str]:
    """The stale images' names, without sizing them (cheap enough for every ``lab up``)."""
    return [image.path.name for image in survey(cache, user, sized=False) if image.state == "stale"]


def _image_dirs(cache: Path) -> list[Path]:
    if not cache.is_dir():
        return []
    return sorted(p for p in cache.iterdir() if p.is_dir() and p.name.startswith(PREFIXES))


def _note_path(cache: Path, where: str) -> Path:
    return cache / LABS / hashlib.sha256(where.encode()).hexdigest()[:16]


def register_lab(cache: Path, root: Path) -> None:
    """Note in ``cache`` that the lab at ``root`` boots from it (written only when missing).

    Example: ``register_lab(Path("/var/lib/hearth-lab/cache"), Path("/srv/mylab"))``
    """
    where = str(root.absolute())
    note = _note_path(cache, where)
    if not note.is_file() or note.read_text() != where:
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(where)


def unregister_lab(cache: Path, root: Path) -> None:
    """Take back :func:`register_lab`'s note (``lab down``); nothing when there is none."""
    _note_path(cache, str(root.absolute())).unlink(missing_ok=True)


def registered_roots(cache: Path) -> list[Path]:
    """The lab roots noted in ``cache`` (a root's lab may since be down: its record is gone)."""
    notes = cache / LABS
    return [Path(n.read_text()) for n in sorted(notes.iterdir()) if n.is_file()] if notes.is_dir() else []


def lab_roots(cache: Path) -> list[Path]:
    """This lab's root, the default one, the labs beside it (``hearth.lab.beside`` puts a lab
    called ``hearth-<name>`` at ``/var/lib/hearth-<name>``) and every root noted in ``cache``."""
    siblings = sorted(DEFAULT_ROOT.parent.glob("hearth-*")) if DEFAULT_ROOT.parent.is_dir() else []
    return list(dict.fromkeys([lab_root(), DEFAULT_ROOT, *siblings, *registered_roots(cache)]))


def users_of(images: Iterable[Path], roots: Iterable[Path]) -> dict[Path, list[str]]:
    """For each image, what uses it: the labs whose machines boot from it, mounts, processes."""
    used: dict[Path, list[str]] = {image: [] for image in images}

    def note(text: str, who: str) -> None:
        for image, users in used.items():
            if str(image) in text and who not in users:
                users.append(who)

    for root in roots:
        record = load_record(root)
        for m in (record.machines.values() if record else []):
            note(m.base, f"lab {root}")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            note(line, f"mount {line.split()[1]}")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            note(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"),
                 f"process {pid}")
        except OSError:
            continue  # ended meanwhile
    return used


def du(path: Path) -> int:
    """Bytes under ``path`` (files counted once, symlinks not followed)."""
    total, seen = 0, set()
    for top, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def survey(cache: Path, user: str, *, sized: bool = True) -> list[CachedImage]:
    """Every image directory in ``cache``, with its state, users and (``sized``) size; unsized: 0."""
    paths = _image_dirs(cache)
    current = current_names(user)
    used = users_of(paths, lab_roots(cache))
    return [CachedImage(p, du(p) if sized else 0, p.name in current, tuple(used[p])) for p in paths]


def prune(cache: Path, user: str) -> list[CachedImage]:
    """Remove the stale images (and unfinished builds) under the cache's lock, and the notes of
    labs that are down; the images removed."""
    with cache_lock(cache):  # no build runs meanwhile, so a .build-* left is an interrupted one
        stale = [image for image in survey(cache, user) if image.state == "stale"]
        for image in stale:
            remove_build_dir(image.path)
        for root in registered_roots(cache):
            if not record_path(root).is_file():
                unregister_lab(cache, root)
    return stale
