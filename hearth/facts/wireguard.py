"""WireGuard facts: kernel support and the host's own public key."""

from __future__ import annotations

from pyinfra.api import FactBase

KEY_DIR = "/etc/wireguard"


def key_paths(interface: str) -> tuple[str, str]:
    """(private key, public key) paths of ``interface`` on a host."""
    return f"{KEY_DIR}/{interface}.key", f"{KEY_DIR}/{interface}.pub"


class KernelWireGuard(FactBase[bool]):
    """
    Whether the kernel provides WireGuard (built in, loaded, or loadable).

    ``False`` means the userspace implementation (wireguard-go) is needed, e.g. in
    a container whose host kernel has no WireGuard module.

    .. code:: python

        host.get_fact(KernelWireGuard)  # True / False
    """

    def command(self) -> str:
        return (
            "if [ -d /sys/module/wireguard ]; then echo yes; "
            "elif modprobe --dry-run --quiet wireguard 2>/dev/null; then echo yes; "
            "else echo no; fi"
        )

    def process(self, output: list[str]) -> bool:
        return "\n".join(output).strip() == "yes"


class WireGuardPublicKey(FactBase[str | None]):
    """
    The public key of ``interface`` (``/etc/wireguard/<interface>.pub``), or ``None``
    when the host has no key pair yet. Only the public half is ever read.

    .. code:: python

        host.get_fact(WireGuardPublicKey, interface="wg0", _sudo=True)
    """

    def command(self, interface: str) -> str:
        private, public = key_paths(interface)
        return f"if [ -s {private} ] && [ -s {public} ]; then cat {public}; fi"

    def process(self, output: list[str]) -> str | None:
        value = "\n".join(output).strip()
        return value or None


class InterfaceAddresses(FactBase[list[str]]):
    """
    The IPv4 addresses (``address/prefix``) of a network interface; empty when the
    interface does not exist.

    .. code:: python

        host.get_fact(InterfaceAddresses, interface="tailscale0")  # ["100.64.0.3/32"]
    """

    default = list

    def command(self, interface: str) -> str:
        return f"ip -o -4 addr show dev {interface} 2>/dev/null | awk '{{print $4}}' || true"

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class LivePublicKey(FactBase[str | None]):
    """
    The public key the running interface uses (``wg show <interface> public-key``),
    or ``None`` when the interface is down.

    .. code:: python

        host.get_fact(LivePublicKey, interface="wg0", _sudo=True)
    """

    def command(self, interface: str) -> str:
        return f"wg show {interface} public-key 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        value = "\n".join(output).strip()
        return value or None


class WireGuardConfig(FactBase[str | None]):
    """
    The text of ``/etc/wireguard/<interface>.conf``, or ``None`` when there is none.
    hearth's configs hold no secret (the private key is loaded by ``PostUp``), and
    they are where a host keeps its peers' last known public keys.

    .. code:: python

        host.get_fact(WireGuardConfig, interface="wg0", _sudo=True)
    """

    def command(self, interface: str) -> str:
        path = f"{KEY_DIR}/{interface}.conf"
        return f"if [ -f {path} ]; then cat {path}; echo; echo '#hearth-end'; fi"

    def process(self, output: list[str]) -> str | None:
        lines = list(output)
        if not lines or lines[-1].strip() != "#hearth-end":
            return None
        return "\n".join(lines[:-1]).rstrip("\n") + "\n"
