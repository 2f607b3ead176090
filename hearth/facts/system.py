"""Facts about the machine itself: is it a container, what does its kernel offer."""

from __future__ import annotations

from pyinfra.api import FactBase


class Container(FactBase[str | None]):
    """
    The container technology this host runs in, or ``None`` on a real machine / VM.

    Inside a container the clock, kernel modules and most sysctls belong to the
    machine hosting it.

    .. code:: python

        host.get_fact(Container)  # "systemd-nspawn", "lxc", "docker" ... or None
    """

    def command(self) -> str:
        return "systemd-detect-virt --container 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        value = "\n".join(output).strip()
        return None if value in ("", "none") else value


class PathExists(FactBase[bool]):
    """
    Whether a path exists (any kind: file, directory, /proc or /sys entry).

    .. code:: python

        host.get_fact(PathExists, path="/proc/sys/net/bridge")  # True / False
    """

    def command(self, path: str) -> str:
        quoted = "'" + path.replace("'", "'\\''") + "'"
        return f"test -e {quoted} && echo yes || echo no"

    def process(self, output: list[str]) -> bool:
        return "\n".join(output).strip() == "yes"


class DebianArch(FactBase[str]):
    """
    The machine's Debian architecture (``dpkg --print-architecture``): what the
    inventory's ``arch`` must say.

    .. code:: python

        host.get_fact(DebianArch)  # "amd64", "arm64"
    """

    def command(self) -> str:
        return "dpkg --print-architecture"

    def process(self, output: list[str]) -> str:
        return "\n".join(output).strip()
