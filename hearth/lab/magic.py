"""Wake-on-LAN magic packets: six 0xFF bytes, then the target MAC sixteen times."""

from __future__ import annotations

SYNC = b"\xff" * 6


def mac_bytes(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or with ``-``) as 6 bytes; ValueError when malformed."""
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def build(mac: str) -> bytes:
    """The 102-byte magic packet for ``mac``."""
    return SYNC + mac_bytes(mac) * 16


def parse(data: bytes) -> str | None:
    """The MAC a magic packet wakes (lower case, ``:``-separated), or None.

    The sync stream may sit anywhere in the payload and may be followed by a
    SecureOn password; a broadcast MAC is not a machine and never matches.
    """
    start = data.find(SYNC)
    while start != -1:
        body = data[start + 6 : start + 6 + 96]
        mac = body[:6]
        if len(body) == 96 and body == mac * 16 and mac != b"\xff" * 6:
            return ":".join(f"{b:02x}" for b in mac)
        start = data.find(SYNC, start + 1)
    return None
