"""`hearth status` shows the healing timer's actions (issue 23 item 5), read from the
monitoring host's Prometheus: answers faked here from what heal.render really writes."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

from hearth import status_heal
from hearth.deploy_data import group_defaults
from hearth.inventory import load_inventory
from hearth.telemetry import heal

REPO = Path(__file__).resolve().parents[2]


def test_every_query_reads_a_metric_the_timer_writes() -> None:
    cfg = {"host": "h", "terminal_routes": [], "serves": [{"unit": "ollama.service"}]}
    written = {line.split("{")[0] for line in heal.render(cfg, {}, heal.Report(), 1.0).splitlines()
               if line and not line.startswith("#")}  # fmt: skip
    for expr in status_heal.QUERIES.values():
        names = set(re.findall(r"hearth_heal_[a-z_]+", expr))
        assert names and names <= written, expr


def fake_prometheus(answers: dict[str, list[dict[str, Any]]], asked: list[str]) -> Any:
    def get(url: str, token: str | None = None) -> Any:
        asked.append(url)
        expr = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["query"][0]
        return {"status": "success", "data": {"resultType": "vector", "result": answers.get(expr, [])}}

    return get


def sample(value: float, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1.0, str(value)]}


def test_restarts_pages_and_budget_per_serve_from_prometheus() -> None:
    inv = load_inventory(REPO / "inventory" / "lab2.yml", group_defaults())
    assert inv.monitoring is not None
    q = status_heal.QUERIES
    answers = {
        q["up"]: [sample(1, host="den-mini", unit="ollama.service"), sample(0, host="den-rtx", unit="ollama.service")],
        q["restarts"]: [sample(2, host="den-mini", unit="ollama.service")],
        q["pages"]: [sample(1, host="den-rtx", unit="ollama.service"), sample(1, host="den-rtx", unit=heal.CUDA)],
        q["exhausted"]: [sample(1, host="den-mini", unit="ollama.service")],
        q["cuda"]: [sample(3, host="den-rtx")],
        q["last_run"]: [sample(1000, host="den-mini"), sample(940, host="den-rtx")],
    }  # fmt: skip
    asked: list[str] = []
    report = status_heal.collect(inv, fake_prometheus(answers, asked))
    mon = inv.hosts[inv.monitoring.host]
    assert all(u.startswith(f"http://{mon.overlay_ip}:{inv.monitoring.prometheus_port}/api/v1/query?") for u in asked)
    assert report["error"] is None
    serves = {(s["host"], s["unit"]): s for s in report["serves"]}
    mini, rtx = serves[("den-mini", "ollama.service")], serves[("den-rtx", "ollama.service")]
    assert mini == {"host": "den-mini", "unit": "ollama.service", "up": True, "restarts_24h": 2, "pages_24h": 0,
                    "budget_exhausted": True}  # fmt: skip
    assert rtx["up"] is False and rtx["pages_24h"] == 1 and rtx["restarts_24h"] == 0
    hosts = {h["host"]: h for h in report["hosts"]}
    assert hosts["den-rtx"]["cuda_recoveries_24h"] == 3 and hosts["den-rtx"]["cuda_pages_24h"] == 1
    text = "\n".join(status_heal.render(report, now=1060))
    assert "healing (last 24h" in text and "EXHAUSTED" in text and "DOWN" in text
    assert "den-rtx          timer ran 120s ago, CUDA recoveries 3, CUDA pages 1" in text


def test_without_a_monitoring_host_or_an_answer_it_says_so() -> None:
    example = load_inventory(REPO / "inventory" / "example.yml", group_defaults())
    asked: list[str] = []
    report = status_heal.collect(example, fake_prometheus({}, asked))
    assert not asked and report["error"] == "no monitoring host in the inventory"
    assert "unknown: no monitoring host" in "\n".join(status_heal.render(report))
    lab2 = load_inventory(REPO / "inventory" / "lab2.yml", group_defaults())

    def refused(url: str, token: str | None = None) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    report = status_heal.collect(lab2, refused)
    assert report["error"].startswith("Prometheus: ConnectionRefusedError")
    assert status_heal.render(None) == []
