"""The overlay's peer-key decision (issue 9 item 2), against a stand-in pyinfra state:
an unreachable peer is never asked (asking would connect again and raise), keeps its
last known key from the configs of the hosts that answered, or is left out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hearth.configs import overlay
from hearth.deploy_data import group_defaults
from hearth.facts.wireguard import WireGuardConfig, WireGuardPublicKey
from hearth.inventory import load_cached, load_inventory
from hearth.operations import wireguard

LAB = Path(__file__).resolve().parents[2] / "inventory" / "lab.yml"


class FakeHost:
    def __init__(self, name: str, key: str | None, config: str | None, connected: bool = True) -> None:
        self.name = name
        self.data = {"hearth_host": name}
        self.connected = connected
        self.facts = {WireGuardPublicKey: key, WireGuardConfig: config}
        self.asked: list[Any] = []

    def get_fact(self, fact: Any, **_: Any) -> Any:
        self.asked.append(fact)
        if not self.connected:  # pyinfra would try to connect again here, and raise
            raise ConnectionError(f"{self.name} is not connected")
        return self.facts[fact]


@pytest.fixture
def lab_state(monkeypatch: pytest.MonkeyPatch) -> Any:
    inv = load_inventory(LAB, group_defaults())
    names = overlay.members(inv)
    sleeper = next(n for n in names if inv.hosts[n].sleep.sleeps)
    keys = {n: f"{n}-key".ljust(43, "A") + "=" for n in names}

    def build(sleeper_known: bool) -> tuple[dict[str, FakeHost], str]:
        hosts = {}
        for n in names:
            known = dict(keys) if sleeper_known else {k: v for k, v in keys.items() if k != sleeper}
            config = overlay.wg_config(inv, n, known, omit_unknown=True).render()
            hosts[n] = FakeHost(n, keys[n], config, connected=n != sleeper)
        fake = SimpleNamespace(inventory=list(hosts.values()), is_executing=True,
                               activated_hosts={h for n, h in hosts.items() if n != sleeper},
                               failed_hosts={hosts[sleeper]})
        monkeypatch.setattr(wireguard, "state", fake)
        wireguard._cache.clear()
        return hosts, sleeper

    return inv, keys, build


def test_asleep_peer_keeps_its_last_known_key(lab_state: Any) -> None:
    inv, keys, build = lab_state
    hosts, sleeper = build(sleeper_known=True)
    me = next(n for n in hosts if n != sleeper)
    got, stale, unknown = wireguard.peer_keys(str(LAB), me, inv.overlay.interface)
    assert got[sleeper] == keys[sleeper] and stale == [sleeper] and unknown == []
    assert all(got[n] == keys[n] for n in hosts if n not in (me, sleeper))
    assert hosts[sleeper].asked == []


def test_peer_never_configured_is_left_out(lab_state: Any) -> None:
    inv, _, build = lab_state
    hosts, sleeper = build(sleeper_known=False)
    me = next(n for n in hosts if n != sleeper)
    got, stale, unknown = wireguard.peer_keys(str(LAB), me, inv.overlay.interface)
    assert sleeper not in got and unknown == [sleeper] and stale == []
    text = overlay.wg_config(load_cached(str(LAB)), me, got, omit_unknown=True).render()
    assert inv.hosts[sleeper].address not in text
