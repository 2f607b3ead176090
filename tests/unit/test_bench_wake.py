"""`hearth bench wake`'s figures from recorded rounds (the lab run itself: tests/lab/test_bench_wake.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hearth.bench import wake


def _round(ready: float, wake_s: float, packet_to_sshd: float | None = 0.7) -> dict[str, object]:
    return {"ready_s": ready, "warm_s": 0.006, "warm_first_token_s": 0.005, "wake_s": wake_s,
            "wake_first_token_s": wake_s - 0.01, "added_ms": (wake_s - ready - 0.006) * 1000,
            "added_first_token_ms": (wake_s - 0.01 - ready - 0.005) * 1000,
            "phases": {"request_to_packet_s": 0.02, "packet_to_sshd_s": packet_to_sshd, "sshd_to_engine_s": 1.0,
                       "engine_to_first_token_s": 0.1, "first_token_to_answer_s": 0.01,
                       "boot_to_sshd_by_power_controller_s": 0.69}}


def test_summary_and_printed_lines() -> None:
    compile(wake.PROBE, "probe", "exec")  # the script run inside the lab machines' namespaces
    rounds = [_round(2.0, 2.1), _round(2.0, 2.4, None), _round(3.0, 3.05)]
    burst = {"requests": 10, "ok": 10, "statuses": {"200": 10}, "hold_bound": 64, "magic_packets": 1}
    idle = {"idle_minutes": 1, "check_interval_s": 15, "last_answer_to_asleep_s": 71.5, "beyond_idle_minutes_s": 11.5,
            "wake_first_token_s": 4.2, "wake_s": 4.3, "magic_packets": 1,
            "phases": {"request_to_packet_s": 2.5}}
    result = wake.summarize(rounds, burst, idle)
    # a missing phase is left out; below 100 rounds the p99 is the slowest
    assert result["phases"]["packet_to_sshd_s"] == {"p50": 0.7, "p99": 0.7, "max": 0.7}
    assert round(result["gateway_added_max_ms"]) == 394 and round(result["gateway_added_p50_ms"]) == 94
    text = "\n".join(wake.report_lines(result))
    # within the wake: engine up -> first token (0.1 s) less the awake first token (5 ms)
    assert round(result["gateway_added_in_wake_ms"]["max"]) == 95
    assert "p50 95 ms, p99 95 ms" in text and "met" in text
    assert "idle -> asleep (idle_minutes 1, hearth-idle checks every 15s): 71.5 s from the last answer" in text
    assert "(+11.5 s against idle_minutes)" in text
    assert "request to the self-suspended box -> first token 4.200 s" in text
    assert "1 magic packet(s); request -> magic packet 2.500 s" in text
    assert "max 394 ms (boot-to-boot variance included)" in text
    assert "10 requests at once to the sleeping box: 10 answered 200, 1 magic packet(s)" in text
    assert "the gateway holds up to 64 for one wake" in text
    slow = _round(2.0, 2.1)
    slow["phases"]["engine_to_first_token_s"] = 0.4  # type: ignore[index]
    assert "MISSED" in "\n".join(wake.report_lines(wake.summarize([slow], burst)))


def test_summarize_a_recorded_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hearth.cli import main

    rec = tmp_path / "wake.json"
    burst = {"requests": 10, "ok": 10, "statuses": {"200": 10}, "route_capacity": 17, "magic_packets": 1}
    rec.write_text(json.dumps({"rounds": [_round(2.0, 2.1)], "burst": burst, "loadavg": ["1", "1", "1"]}))
    assert main(["bench", "wake", "--summarize", str(rec)]) == 0
    assert "gateway adds within the wake" in capsys.readouterr().out


def test_p99_is_nearest_rank() -> None:
    assert wake._p50_max([float(v) for v in range(1, 201)]) == {"p50": 100.5, "p99": 198.0, "max": 200.0}
    assert wake._p50_max([3.0, 1.0, 2.0]) == {"p50": 2.0, "p99": 3.0, "max": 3.0}
    assert wake._p50_max([]) == {}


def test_a_run_recorded_before_p99_and_the_idle_leg_still_prints(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from hearth.cli import main

    rec = tmp_path / "old.json"
    burst = {"requests": 10, "ok": 9, "statuses": {"200": 9, "429": 1}, "route_capacity": 9, "magic_packets": 1}
    rec.write_text(json.dumps({"rounds": [_round(2.0, 2.1)], "burst": burst}))
    assert main(["bench", "wake", "--summarize", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "idle -> asleep: not measured" in out and "recorded when the route admitted 9" in out
