"""The monitoring host (issue 23 item 2): Debian's prometheus and prometheus-alertmanager,
configured from the inventory, each listening on the host's overlay address only
(Alertmanager's HA gossip port turned off).

Prometheus scrapes over the overlay: every Linux host's node exporter (job
``hearth-node``, labels ``host`` and ``sleeps``), the gateway's ``/metrics``
(``hearth-gateway``), each vLLM serve's own ``/metrics`` (``hearth-vllm``), itself and
Alertmanager. Rules: hearth-nodes.rules.yml and hearth-gateway.rules.yml as they are;
hearth-heal.rules.yml (HearthServeDown, from each host's healing period) and the alert
routing rules generated from the inventory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from hearth.configs import TEMPLATES, ConfigFile, placeholder
from hearth.configs import heal as heal_configs
from hearth.configs import vllm as vllm_configs
from hearth.configs.base import settings
from hearth.inventory import Inventory
from hearth.inventory.model import AlertReceiver

PACKAGES = ["prometheus", "prometheus-alertmanager"]
PROMETHEUS_YML = "/etc/prometheus/prometheus.yml"
ALERTMANAGER_YML = "/etc/prometheus/alertmanager.yml"
PROMETHEUS_DEFAULTS = "/etc/default/prometheus"
ALERTMANAGER_DEFAULTS = "/etc/default/prometheus-alertmanager"
RULES_DIR = "/etc/prometheus/rules"
RULE_FILES = ("hearth-nodes.rules.yml", "hearth-gateway.rules.yml")
ROUTING_RULES = "hearth-alert-routing.rules.yml"
SECRETS_DIR = "/etc/prometheus/hearth-secrets"
FALLBACK = "hearth-fallback"
Resolver = Callable[[str], str]


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
        # honor_labels: the textfile metrics' own host label (the same inventory name) is kept
        {"job_name": "hearth-node", "honor_labels": True, "static_configs": nodes},
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
        "rule_files": [f"{RULES_DIR}/{f}" for f in (*RULE_FILES, heal_configs.RULES, ROUTING_RULES)],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"{address(inv, mon.host)}:{mon.alertmanager_port}"]}]}]},
        "scrape_configs": scrape_configs(inv),
    }  # fmt: skip


def secret_file(receiver: AlertReceiver) -> str:
    return f"{SECRETS_DIR}/{receiver.name}"


def _integration(receiver: AlertReceiver, resolve: Resolver | None) -> tuple[str, dict[str, Any]]:
    """(Alertmanager's *_configs key, one entry) for a receiver of the inventory."""
    if receiver.kind == "telegram":
        assert receiver.bot_token is not None
        # Alertmanager 0.25 (Debian 12) has no bot_token_file: the token is in the file (0640 root:prometheus)
        token = resolve(receiver.bot_token) if resolve else placeholder(f"Telegram bot token {receiver.bot_token}")
        return "telegram_configs", {"bot_token": token, "chat_id": receiver.chat_id, "send_resolved": True,
                                    "parse_mode": ""}  # fmt: skip
    entry: dict[str, Any] = {"url": receiver.url, "send_resolved": True, "max_alerts": 50}
    if receiver.bearer:
        entry["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": secret_file(receiver)}}
    return "webhook_configs", entry


def alertmanager_config(inv: Inventory, resolve: Resolver | None = None) -> dict[str, Any]:
    """The first receiver gets every alert; the others get the fallback copies (hearth_route="fallback")
    that the routing rules raise while deliveries to the first fail. No receiver: alerts stay in
    Alertmanager's UI."""
    assert inv.monitoring is not None
    receivers = inv.monitoring.receivers
    notify = inv.monitoring.notify
    route: dict[str, Any] = {"receiver": receivers[0].name if receivers else "hearth-none",
                             "group_by": ["alertname", "host"], "group_wait": f"{notify.group_wait_s}s",
                             "group_interval": f"{notify.group_interval_s}s",
                             "repeat_interval": f"{notify.repeat_interval_s}s"}  # fmt: skip
    out: list[dict[str, Any]] = []
    if not receivers:
        out.append({"name": "hearth-none"})
    else:
        key, entry = _integration(receivers[0], resolve)
        out.append({"name": receivers[0].name, key: [entry]})
    if len(receivers) > 1:
        fallback: dict[str, Any] = {"name": FALLBACK}
        for receiver in receivers[1:]:
            key, entry = _integration(receiver, resolve)
            fallback.setdefault(key, []).append(entry)
        out.append(fallback)
        route["routes"] = [{"matchers": ['hearth_route="fallback"'], "receiver": FALLBACK,
                            "group_wait": f"{min(10, notify.group_wait_s)}s"}]  # fmt: skip
    return {"route": route, "receivers": out}


def routing_rules(inv: Inventory) -> dict[str, Any]:
    """Prometheus rules that raise the fallback copies: deliveries to the first receiver's
    integration failed in the last 10 minutes -> every firing alert again, labelled for the
    fallback route (original name in original_alert), and one alert saying delivery fails."""
    assert inv.monitoring is not None
    receivers = inv.monitoring.receivers
    if len(receivers) < 2:
        return {"groups": []}
    integration = receivers[0].kind
    failing = (f'sum(increase(alertmanager_notifications_failed_total{{integration="{integration}"}}[10m])) > 0')
    return {"groups": [{"name": "hearth-alert-routing", "rules": [
        {"alert": "HearthAlertDeliveryFailing", "expr": failing,
         "labels": {"severity": "critical", "hearth_route": "fallback"},
         "annotations": {"summary": f"alerts cannot reach {receivers[0].name} ({integration})",
                         "description": f"Alertmanager failed to deliver to {receivers[0].name} in the last "
                                        "10 minutes; every firing alert now also goes to the fallback."}},
        {"alert": "HearthAlertViaFallback",
         "expr": ('label_replace(ALERTS{alertstate="firing", hearth_route!="fallback"}, '
                  '"original_alert", "$1", "alertname", "(.+)") and on() (' + failing + ")"),
         "labels": {"hearth_route": "fallback"},
         "annotations": {"summary": "{{ $labels.original_alert }} on {{ $labels.host }} (via the fallback: "
                                    f"{receivers[0].name} unreachable)"}},
    ]}]}  # fmt: skip


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
    resolve = (facts or {}).get("resolve")
    return [
        *rules,
        ConfigFile(dest=f"{RULES_DIR}/{heal_configs.RULES}", template="monitoring/config.yml.j2",
                   context={"what": "Prometheus rules for the healing timer's serves",
                            "text": _yaml(heal_configs.serve_down_rules(inv))}),
        ConfigFile(dest=f"{RULES_DIR}/{ROUTING_RULES}", template="monitoring/config.yml.j2",
                   context={"what": "Prometheus alert routing rules", "text": _yaml(routing_rules(inv))}),
        ConfigFile(dest=PROMETHEUS_YML, template="monitoring/config.yml.j2",
                   context={"what": "Prometheus", "text": _yaml(prometheus_config(inv))}),
        ConfigFile(dest=ALERTMANAGER_YML, template="monitoring/config.yml.j2",
                   context={"what": "Alertmanager", "text": _yaml(alertmanager_config(inv, resolve))},
                   mode="0640", group="prometheus"),
        ConfigFile(dest=PROMETHEUS_DEFAULTS, template="monitoring/defaults.j2",
                   context={"unit": "prometheus", "args": " ".join(prometheus_args(inv, name))}),
        ConfigFile(dest=ALERTMANAGER_DEFAULTS, template="monitoring/defaults.j2",
                   context={"unit": "prometheus-alertmanager", "args": " ".join(alertmanager_args(inv, name))}),
    ]
