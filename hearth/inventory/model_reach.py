"""Inventory schema for how clients reach the gateway: timeouts, LAN exposure."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field


class UpstreamTimeouts(BaseModel):
    """Timeouts of the gateway toward an upstream, in seconds (None: the default).

    On ``gateway.timeouts`` they are the defaults for every upstream; on a host they
    apply to each of its serves (seed 003's remote tier: ``probe_s: 8``); on a serve
    they override the host's.
    """

    model_config = ConfigDict(extra="forbid")

    connect_s: float | None = Field(None, gt=0, le=600)
    first_byte_s: float | None = Field(None, gt=0, le=3600)
    idle_s: float | None = Field(None, gt=0, le=3600)
    total_s: float | None = Field(None, gt=0, le=86400)
    probe_s: float | None = Field(None, gt=0, le=600)

    def set_values(self) -> dict[str, float]:
        """Only the values the inventory sets."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class LanExposure(BaseModel):
    """``gateway.lan``: serve on the LAN address too (opt-in), to these CIDRs only."""

    model_config = ConfigDict(extra="forbid")

    listen: bool = False
    # None: the inventory's admin LAN (lan.cidr); never 0.0.0.0/0 unless listed
    allow: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    admin_api: bool = False  # refused by validation: the admin API stays off the LAN

    def sources(self, admin_lan: ipaddress.IPv4Network) -> list[str]:
        """The CIDRs the gateway port is open to on the LAN (the admin LAN by default)."""
        return [str(n) for n in self.allow] if self.allow is not None else [str(admin_lan)]
