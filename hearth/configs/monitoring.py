"""The monitoring host (issue 23 item 2): Debian's prometheus and prometheus-alertmanager,
configured from the inventory, each listening on the host's overlay address only
(Alertmanager's HA gossip port turned off).

Prometheus scrapes over the overlay: every Linux host's node exporter (job
``hearth-node``, labels ``host`` and ``sleeps``), the gateway's ``/metrics``
(``hearth-gateway``), each vLLM serve's own ``/metrics`` (``hearth-vllm``), itself and
Alertmanager. Rules: hearth-nodes.rules.yml and hearth-gateway.rules.yml.
"""

from __future__ import annotations

from typing import Any

import yaml

from hearth.configs import TEMPLATES, ConfigFile
from hearth.configs import vllm as vllm_configs
from hearth.configs.base import settings
from hearth.inventory import Inventory

PACKAGES = ["prometheus", "prometheus-alertmanager"]
PROMETHEUS_YML = "/etc/prometheus/prometheus.yml"
ALERTMANAGER_YML = "/etc/prometheus/alertmanager.yml"
PROMETHEUS_DEFAULTS = "/etc/default/prometheus"
ALERTMANAGER_DEFAULTS = "/etc/default/prometheus-alertmanager"
RULES_DIR = "/etc/prometheus/rules"
RULE_FILES = ("hearth-nodes.rules.yml", "hearth-gateway.rules.yml")


def applies(inv: Inventory, name: str) -> bool:
    return inv.monitoring is not None and inv.monitoring.host == name


def address(inv: Inventory, name: str) -> str:
    return str(inv.hosts[name].overlay_ip)


def scrape_configs(inv: Inventory) -> list[dict[str, Any]]:
    assert inv.monitoring is not None
    mon = inv.monitoring
    me = address(inv, mon.host)
    nodes = [{"targets": [f"{inv.hosts[n].overlay_ip}:{int(settings(inv, n)['node_exporter_port'])}"],
              "labels": {"host": n, "sleeps": "true" if inv.hosts[n].sleep.sleeps else "false"}}
             for n in inv.linux_hosts()]  # fmt: skip
    jobs: list[dict[str, Any]] = [
        {"job_name": "prometheus", "static_configs": [{"targets": [f"{me}:{mon.prometheus_port}"],
                                                       "labels": {"host": mon.host}}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": [f"{me}:{mon.alertmanager_port}"],
                                                         "labels": {"host": mon.host}}]},
        {"job_name": "hearth-node", "static_configs": nodes},
    ]  # fmt: skip
    if inv.gateway is not None:
        gw = inv.gateway.host
        jobs.append({"job_name": "hearth-gateway", "static_configs": [
            {"targets": [f"{inv.hosts[gw].overlay_ip}:{inv.gateway.port}"], "labels": {"host": gw}}]})  # fmt: skip
    serves = [{"targets": [vllm_configs.base_url(inv, n, s).removeprefix("http://")],
               "labels": {"host": n, "serve": s.name,
                          "sleeps": "true" if inv.hosts[n].sleep.sleeps else "false"}}
              for n in inv.linux_hosts() for s in vllm_configs.vllm_serves(inv, n)]  # fmt: skip
    if serves:
        jobs.append({"job_name": "hearth-vllm", "static_configs": serves})
    return jobs


def prometheus_config(inv: Inventory) -> dict[str, Any]:
    assert inv.monitoring is not None
    mon = inv.monitoring
    interval = f"{mon.scrape_interval_s}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "external_labels": {"cluster": inv.name}},
        "rule_files": [f"{RULES_DIR}/{f}" for f in RULE_FILES],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"{address(inv, mon.host)}:{mon.alertmanager_port}"]}]}]},
        "scrape_configs": scrape_configs(inv),
    }  # fmt: skip


def alertmanager_config(inv: Inventory) -> dict[str, Any]:
    """Routing to receivers: none named in the inventory yet, so alerts stay in Alertmanager's UI."""
    return {
        "route": {"receiver": "hearth-none", "group_by": ["alertname", "host"], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h"},
        "receivers": [{"name": "hearth-none"}],
    }  # fmt: skip


def prometheus_args(inv: Inventory, name: str) -> list[str]:
    assert inv.monitoring is not None
    return [f"--web.listen-address={address(inv, name)}:{inv.monitoring.prometheus_port}",
            f"--storage.tsdb.retention.time={inv.monitoring.retention_days}d"]  # fmt: skip


def alertmanager_args(inv: Inventory, name: str) -> list[str]:
    assert inv.monitoring is not None
    # --cluster.listen-address= (empty) turns off the HA gossip port (9094 on every address by default)
    return [f"--web.listen-address={address(inv, name)}:{inv.monitoring.alertmanager_port}",
            "--cluster.listen-address=", f"--web.external-url=http://{address(inv, name)}:"
            f"{inv.monitoring.alertmanager_port}/"]  # fmt: skip


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def host_files(inv: Inventory, name: str, facts: dict[str, Any] | None = None) -> list[ConfigFile]:
    if not applies(inv, name):
        return []
    rules = [ConfigFile(dest=f"{RULES_DIR}/{f}", template="monitoring/verbatim.j2",
                        context={"text": (TEMPLATES / "prometheus" / f).read_text()}) for f in RULE_FILES]  # fmt: skip
    return [
        *rules,
        ConfigFile(dest=PROMETHEUS_YML, template="monitoring/config.yml.j2",
                   context={"what": "Prometheus", "text": _yaml(prometheus_config(inv))}),
        ConfigFile(dest=ALERTMANAGER_YML, template="monitoring/config.yml.j2",
                   context={"what": "Alertmanager", "text": _yaml(alertmanager_config(inv))}),
        ConfigFile(dest=PROMETHEUS_DEFAULTS, template="monitoring/defaults.j2",
                   context={"unit": "prometheus", "args": " ".join(prometheus_args(inv, name))}),
        ConfigFile(dest=ALERTMANAGER_DEFAULTS, template="monitoring/defaults.j2",
                   context={"unit": "prometheus-alertmanager", "args": " ".join(alertmanager_args(inv, name))}),
    ]
