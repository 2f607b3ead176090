"""Inventory schema for client devices on the overlay (``client_devices``).

Laptops, phones, a NAS: devices hearth does not manage that reach the gateway
through WireGuard. ``hearth client add`` writes each one here with its overlay
address and its **public** key; the private key never reaches the inventory.
They get addresses from their own range (``cidr``, outside ``overlay.cidr``), so
no rule meant for the overlay's hosts ever matches them: the gateway host accepts
them as peers and lets them reach the gateway port, and nothing else.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
WG_KEY = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"  # base64 of 32 bytes, as `wg pubkey` prints


class ClientDevice(BaseModel):
    """One device: its overlay address and WireGuard public key."""

    model_config = ConfigDict(extra="forbid")

    address: ipaddress.IPv4Address
    public_key: str = Field(pattern=WG_KEY)


class ClientDevices(BaseModel):
    """``client_devices``: the devices' range and the devices."""

    model_config = ConfigDict(extra="forbid")

    cidr: ipaddress.IPv4Network
    devices: dict[Annotated[str, Field(pattern=NAME)], ClientDevice] = {}

    def gateway_address(self) -> ipaddress.IPv4Address:
        """The gateway host's own address in the range (its first host address)."""
        return next(self.cidr.hosts())
