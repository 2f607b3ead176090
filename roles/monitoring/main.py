"""Role monitoring: Prometheus and Alertmanager on the inventory's monitoring host (issue 23 item 2).

Debian's `prometheus` and `prometheus-alertmanager`. Their arguments (listen on the
overlay address only) are in place before the packages are installed, so their first
start already binds there. prometheus.yml is checked with `promtool check config` and
alertmanager.yml with `amtool check-config` on the host before either replaces the old
file; a change reloads the service (SIGHUP), an argument change restarts it.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from hearth.configs import monitoring as configs
from hearth.inventory import SecretError, load_cached, resolve_secret
from hearth.operations import config_files, paths, services
from hearth.operations.apt import packages_installed
from hearth.operations.files import validated_put


def _resolve(ref: str | None) -> str:
    assert ref is not None
    try:
        return resolve_secret(ref)
    except SecretError as exc:
        raise SecretError(f"monitoring.receivers: {exc}") from None


@deploy("monitoring")
def apply_monitoring() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    # receivers' secrets are resolved here, on the deploying machine, before any change
    wanted = {f.dest: f for f in configs.host_files(inv, name, {"resolve": _resolve})}
    if not wanted:
        return
    assert inv.monitoring is not None
    bearers = {configs.secret_file(r): _resolve(r.bearer) for r in inv.monitoring.receivers if r.bearer}
    args = {
        unit: config_files.put(name=f"{unit} arguments (overlay address only)", src=StringIO(wanted[dest].render()),
                               dest=dest, mode="0644")
        for unit, dest in (("prometheus", configs.PROMETHEUS_DEFAULTS),
                           ("prometheus-alertmanager", configs.ALERTMANAGER_DEFAULTS))
    }  # fmt: skip
    packages_installed("Prometheus and Alertmanager (Debian's packages)", configs.PACKAGES, no_recommends=True)
    paths.directory(name="Rules folder", path=configs.RULES_DIR, mode="0755")
    rules = [
        config_files.put(name=f"Rules {Path(dest).name}", src=StringIO(wanted[dest].render()), dest=dest, mode="0644")
        for dest in wanted if dest.startswith(configs.RULES_DIR)
    ]
    prom = validated_put(name="prometheus.yml from the inventory (promtool check config)",
                         content=wanted[configs.PROMETHEUS_YML].render(), dest=configs.PROMETHEUS_YML,
                         validate="promtool check config {path}", mode="0644")  # fmt: skip
    paths.directory(name="Receiver secrets folder", path=configs.SECRETS_DIR, group="prometheus", mode="0750")
    secrets = [
        validated_put(name=f"Receiver secret {Path(dest).name} (0640)", content=secret + "\n", dest=dest,
                      validate="test -s {path}", mode="0640", group="prometheus", secret=True)
        for dest, secret in bearers.items()
    ]
    telegram = any(r.kind == "telegram" for r in inv.monitoring.receivers)
    am = validated_put(name="alertmanager.yml (amtool check-config)", content=wanted[configs.ALERTMANAGER_YML].render(),
                       dest=configs.ALERTMANAGER_YML, validate="amtool check-config {path}", mode="0640",
                       group="prometheus", secret=telegram)  # fmt: skip
    for unit, config in (("prometheus", [prom, *rules]), ("prometheus-alertmanager", [am, *secrets])):
        services.service(name=f"{unit} enabled and running", service=unit, running=True, enabled=True)
        systemd.service(name=f"Restart {unit} (arguments changed)", service=unit, restarted=True,
                        _if=args[unit].did_change)
        systemd.service(name=f"Reload {unit} (configuration changed)", service=unit, reloaded=True,
                        _if=lambda config=config, unit=unit: any_changed(*config)() and not args[unit].did_change())


apply_monitoring()
