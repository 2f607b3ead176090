"""A second lab beside the default one, so `make test` can run both lab shapes at once.

A lab is its state root (``HEARTH_LAB_ROOT``), its bridge, its nft table and its
namespace prefix; the lab inventories keep their SSH key, known_hosts and secrets under
the default root. :func:`second_lab_env` gives the environment of a lab of its own and
writes a copy of the inventory whose lab paths point into that lab's root. Host names
and the LAN stay as they are: the two shapes already differ in both (``lab-*`` on
192.168.77.0/24, ``den-*`` on 192.168.78.0/24). The image cache stays shared: images
are read-only lower layers and their build holds the cache's lock
(:func:`hearth.lab.image.cache_lock`).

``python -m hearth.lab.beside INVENTORY DIR [NAME]`` writes ``DIR/<inventory's file
name>`` and prints the environment as ``KEY=VALUE`` lines (for ``set -a; . FILE``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .state import DEFAULT_ROOT, cache_dir


def second_lab_env(name: str = "hearth-lab2") -> dict[str, str]:
    """The environment of a lab called ``name``: its own root, bridge, nft table and
    namespace prefix, the default lab's image cache."""
    short = name.removeprefix("hearth-")  # bridge names are at most 15 characters
    return {
        "HEARTH_LAB_ROOT": str(DEFAULT_ROOT.with_name(name)),
        "HEARTH_LAB_BRIDGE": f"hearth-{short}",
        "HEARTH_LAB_NFT_TABLE": f"hearth_{short}".replace("-", "_"),
        "HEARTH_LAB_NETNS_PREFIX": f"h{short}-",
        "HEARTH_LAB_CACHE": str(cache_dir()),
    }


def inventory_copy(src: Path, dest_dir: Path, root: Path) -> Path:
    """Write ``dest_dir/<src's name>``: ``src`` with its lab paths moved under ``root``."""
    text = src.read_text()
    moved = text.replace(f"{DEFAULT_ROOT}/", f"{root}/")
    dest = dest_dir / src.name
    dest.write_text(moved)
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m hearth.lab.beside INVENTORY DIR [NAME]", file=sys.stderr)
        return 2
    env = second_lab_env(*args[2:])
    copy = inventory_copy(Path(args[0]), Path(args[1]), Path(env["HEARTH_LAB_ROOT"]))
    for key, value in {**env, "HEARTH_SECOND_INVENTORY": str(copy)}.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
