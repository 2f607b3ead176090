"""The operating systems hearth configures, and the decision for one host.

Declared once here: Debian 12+, Ubuntu 22.04+, Raspberry Pi OS 12+ (``raspbian``
on 32-bit; the 64-bit image reports plain Debian). Anything else (the example's
postmarketOS phones: Alpine, OpenRC, no apt) is skipped by ``deploy.py`` with one
line, before any of its operations is planned; a host hearth should never connect
to at all is ``managed: false`` in the inventory.
"""

from __future__ import annotations

from typing import Any

# (os-release ID, lowest major version, what people call it)
SUPPORTED: tuple[tuple[str, int, str], ...] = (
    ("debian", 12, "Debian 12+"),
    ("ubuntu", 22, "Ubuntu 22.04+"),
    ("raspbian", 12, "Raspberry Pi OS 12+"),
)
GATEWAY_PYTHON = (3, 11)  # the gateway uses asyncio.timeout and Task.uncancel


def describe() -> str:
    return ", ".join(label for _, _, label in SUPPORTED)


def unsupported_reason(distro: dict[str, Any] | None) -> str | None:
    """None when hearth configures this system (pyinfra's LinuxDistribution fact),
    else one sentence saying what it is and what hearth wants."""
    meta = (distro or {}).get("release_meta") or {}
    ident = str(meta.get("ID") or (distro or {}).get("name") or "").lower()
    major = (distro or {}).get("major")
    pretty = meta.get("PRETTY_NAME") or f"{(distro or {}).get('name') or 'an unknown system'} {major or ''}".strip()
    for wanted, lowest, _ in SUPPORTED:
        if ident == wanted:
            if isinstance(major, int) and major >= lowest:
                return None
            break
    return (f"{pretty} is not a system hearth configures (supported: {describe()}); "
            "mark hosts hearth only routes to `managed: false` in the inventory")


def python_problem(version: tuple[int, ...] | None) -> str | None:
    """None when ``python3`` can run the gateway, else why not."""
    want = ".".join(map(str, GATEWAY_PYTHON))
    if version is None:
        return f"python3 is missing; the gateway needs Python >= {want}"
    if tuple(version[:2]) >= GATEWAY_PYTHON:
        return None
    have = ".".join(map(str, version[:3]))
    return (f"python3 is {have}; the gateway needs Python >= {want} (asyncio.timeout, Task.uncancel): "
            f"move the gateway role to a host with a newer system (Debian 12, Ubuntu 24.04)")


def configurable(host: Any) -> bool:
    """Whether ``deploy.py`` applies roles to this (connected) pyinfra host; when
    not, one warning line says why and the host is left untouched."""
    from pyinfra import logger
    from pyinfra.facts.server import LinuxDistribution

    problem = unsupported_reason(host.get_fact(LinuxDistribution))
    if problem:
        logger.warning(f"hearth: {host.name} skipped, nothing changed there: {problem}")
    return problem is None
