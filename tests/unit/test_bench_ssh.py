"""hearth bench ssh: the medians are per command and per connection kind, kinds alternated."""

from __future__ import annotations

from hearth.bench import ssh


class RecordingClient:
    """A test stand-in for a paramiko client: records the order of commands it is given."""

    def __init__(self, log: list[tuple[str, str]], kind: str) -> None:
        self.log, self.kind = log, kind


def test_measure_alternates_the_kinds_and_takes_medians(monkeypatch) -> None:
    log: list[tuple[str, str]] = []
    n = len(ssh.COMMANDS)
    times = {"nagle": iter([50.0, 40.0, 45.0] * n), "nodelay": iter([2.0, 3.0, 9.0] * n)}

    def fake_round_trip(client: RecordingClient, command: str) -> float:
        log.append((client.kind, command))
        return next(times[client.kind])

    monkeypatch.setattr(ssh, "round_trip_ms", fake_round_trip)
    clients = {k: RecordingClient(log, k) for k in ("nagle", "nodelay")}
    medians = ssh.measure(clients, rounds=3)  # type: ignore[arg-type]
    assert log[:2] == [("nagle", ssh.COMMANDS[0]), ("nodelay", ssh.COMMANDS[0])]
    assert len(log) == 3 * 2 * len(ssh.COMMANDS)
    assert set(medians) == set(ssh.COMMANDS)
    assert all(by["nodelay"] < by["nagle"] for by in medians.values())
