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


class SshClientAddress(FactBase[str | None]):
    """
    The address this very SSH session comes from, as sshd sees it (the first
    field of ``SSH_CONNECTION``): the deploying machine, or the jump host in
    between. ``None`` when not over SSH. Read without sudo (sudo drops the variable).

    .. code:: python

        host.get_fact(SshClientAddress, _sudo=False)  # "192.168.1.5" or "fd00::5"
    """

    def command(self) -> str:
        return 'echo "${SSH_CONNECTION%% *}"'

    def process(self, output: list[str]) -> str | None:
        value = "\n".join(output).strip()
        return value or None


class PythonVersion(FactBase[tuple[int, ...] | None]):
    """
    The version of the host's ``python3`` as a tuple, or ``None`` without one.

    .. code:: python

        host.get_fact(PythonVersion)  # (3, 11, 2)
    """

    def command(self) -> str:
        return "python3 -c 'import sys; print(*sys.version_info[:3])' 2>/dev/null || true"

    def process(self, output: list[str]) -> tuple[int, ...] | None:
        parts = "\n".join(output).split()
        return tuple(int(p) for p in parts) if parts and all(p.isdigit() for p in parts) else None
