"""tests/lab/waiting.py: the lab checks' one bounded wait (on a fake clock: no real sleeps)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab import waiting
from tests.lab.waiting import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(waiting.time, "monotonic", c.monotonic)
    monkeypatch.setattr(waiting.time, "sleep", c.sleep)
    return c


def values(*seen: object) -> Iterator[object]:
    yield from seen


def test_returns_the_first_done_value_polling_every_period(clock: Clock) -> None:
    seen = values("", "", "the line")
    assert wait_for("a line", lambda: next(seen), 60, 3) == "the line"
    assert clock.sleeps == [3, 3]


def test_done_decides_and_the_value_is_returned_whole(clock: Clock) -> None:
    seen = values({"pid": 1, "answers": False}, {"pid": 2, "answers": True})
    got = wait_for("restarted", lambda: next(seen), 60, 3, done=lambda s: s["answers"])
    assert got == {"pid": 2, "answers": True}


def test_fails_at_the_deadline_naming_what_and_the_last_value(clock: Clock) -> None:
    calls = []

    def check() -> str:
        calls.append(clock.now)
        return f"state {len(calls)}"

    with pytest.raises(AssertionError) as err:
        wait_for("the serve answers", check, 10, 3, done=lambda seen: seen == "ready")
    assert str(err.value) == "not within 10s: the serve answers; last seen: 'state 5'"
    # at once, every 3 s, and once more at the deadline: never past it, never a busy loop
    assert calls == [1000, 1003, 1006, 1009, 1010]
    assert clock.now == 1010


def test_show_renders_the_last_value_and_long_values_keep_their_end(clock: Clock) -> None:
    with pytest.raises(AssertionError, match=r"last seen: 3 samples missing$"):
        wait_for("samples", lambda: [1, 2, 3], 4, 2, done=lambda v: False, show=lambda v: f"{len(v)} samples missing")
    log = "x" * 5000 + "the end"
    with pytest.raises(AssertionError) as err:
        wait_for("a line", lambda: log, 1, 1, done=lambda v: False)
    message = str(err.value)
    assert message.endswith("the end'") and "..." in message and len(message) < waiting.SHOWN_CHARS + 100
