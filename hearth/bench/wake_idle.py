"""`hearth bench wake`'s first leg: idle -> asleep, then the request that wakes the box.

The sleeper's ``idle_minutes`` is shortened in a copy of the inventory, deployed to the
sleeper only (the deploy changes hearth-idle's settings, so its idle clock starts
again there). One request through the gateway is answered (the box awake, its model
unloaded after the answer where ``keep_alive`` is 0); from that answer the benchmark
watches the lab machine's power state until hearth-idle has suspended it. Then the
next request through the gateway wakes the self-suspended box (one magic packet) and
is split into phases like every other wake. Whatever fails, the original inventory
goes back to the sleeper (woken first if asleep).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from hearth.configs.sleep import interval_s
from hearth.lab import cycle, power_cli
from hearth.lab import machine as lab_machine
from hearth.lab.sh import LabError


def deploy_host(inventory_yml: Path, host: str) -> None:
    """Deploy ``inventory_yml`` to ``host`` only (pyinfra ``--limit``)."""
    run = cycle.deploy(cycle.pyinfra_inventory_for(inventory_yml), limit=host, timeout=900)
    if not run.ok:
        raise LabError(f"deploy to {host} failed:\n{run.stderr_tail}")


def idle_leg(bench: Any, inventory_yml: Path, minutes: int) -> dict[str, Any]:
    """Idle -> asleep after the last answer, and the request that wakes the box again."""
    tick = interval_s(minutes)
    data = yaml.safe_load(inventory_yml.read_text())
    data["hosts"][bench.sleeper].setdefault("sleep", {})["idle_minutes"] = minutes
    with tempfile.TemporaryDirectory(prefix="hearth-bench-idle-") as tmp:
        short = Path(tmp) / inventory_yml.name
        short.write_text(yaml.safe_dump(data, sort_keys=False))
        try:
            if lab_machine.power_state(bench.record) != "on":
                power_cli.wake(bench.lab, bench.record)
            deploy_host(short, bench.sleeper)
            last = bench.chat(1)[0]  # the box's last work: from its answer on, it is idle
            if last["status"] != 200:
                raise LabError(f"the last request before the idle time answered {last['status']}")
            answered = float(last["sent_at"]) + float(last["seconds"])
            within = minutes * 60 + 4 * tick + 60
            while lab_machine.power_state(bench.record) != "asleep":
                if time.time() - answered > within:
                    raise LabError(f"{bench.sleeper} not asleep {within}s after its last answer "
                                   f"(idle_minutes {minutes}, checked every {tick}s)")
                time.sleep(0.5)
            asleep = time.time() - answered
            before = bench.packets_seen()
            woken = bench.wake_request()  # the gateway learns it asleep from its probes or this request
            if woken["status"] != 200:
                raise LabError(f"the request to the self-suspended box answered {woken['status']}")
            time.sleep(1.0)  # let the power controller log every packet it got
            return {"idle_minutes": minutes, "check_interval_s": tick,
                    "last_answer_to_asleep_s": asleep, "beyond_idle_minutes_s": asleep - minutes * 60,
                    "wake_first_token_s": woken["first_token_s"], "wake_s": woken["seconds"],
                    "magic_packets": bench.packets_seen() - before, "phases": bench.phases(woken)}
        finally:
            if lab_machine.power_state(bench.record) != "on":
                power_cli.wake(bench.lab, bench.record)
            deploy_host(inventory_yml, bench.sleeper)


def idle_lines(leg: dict[str, Any] | None) -> list[str]:
    """The printed figures of the idle leg."""
    if not leg:
        return ["idle -> asleep: not measured (--idle-minutes 0)"]
    return [
        f"idle -> asleep (idle_minutes {leg['idle_minutes']}, hearth-idle checks every {leg['check_interval_s']}s): "
        f"{leg['last_answer_to_asleep_s']:.1f} s from the last answer to the box suspended "
        f"({leg['beyond_idle_minutes_s']:+.1f} s against idle_minutes)",
        f"request to the self-suspended box -> first token {leg['wake_first_token_s']:.3f} s, whole answer "
        f"{leg['wake_s']:.3f} s, {leg['magic_packets']} magic packet(s)" + (
            f"; request -> magic packet {packet:.3f} s (the gateway learns a box asleep from its probes, "
            "or from a request that cannot connect)" if (packet := leg["phases"].get("request_to_packet_s"))
            is not None else ""),
    ]
