"""Role home_assistant: Home Assistant sensors through MQTT discovery (issue 23 item 3).

On the inventory's monitoring host, when ``monitoring.home_assistant`` names a broker:
Debian's `python3-paho-mqtt` and `hearth-ha-mqtt.service` (``hearth.telemetry.ha_mqtt``),
which probes each candidate sensor in the local Prometheus and publishes Home
Assistant's discovery configs (retained), the states, and an availability topic with a
last will. The broker password is resolved on the deploying machine before any change
and lands in a 0600 file that systemd hands to the service as a credential. A host
that ran the publisher and no longer should has it stopped and removed.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from hearth.configs import home_assistant as configs
from hearth.inventory import SecretError, load_cached, resolve_secret
from hearth.operations import config_files, paths, services
from hearth.operations.apt import packages_installed
from hearth.operations.files import validated_put


def _password(ref: str) -> str:
    try:
        return resolve_secret(ref)
    except SecretError as exc:
        raise SecretError(f"monitoring.home_assistant.password: {exc}") from None


def _remove() -> None:
    if not host.get_fact(File, path=configs.UNIT_FILE):
        return
    services.service(name="Home Assistant publisher stopped (no longer in the inventory)", service=configs.UNIT,
                     running=False, enabled=False)  # fmt: skip
    for path in (configs.UNIT_FILE, configs.CONFIG, configs.SCRIPT):
        paths.file(name=f"No {Path(path).name}", path=path, present=False)
    paths.directory(name="No publisher secrets folder", path=configs.CONFIG_DIR, present=False)
    systemd.daemon_reload(name="Reload systemd (publisher unit removed)")


@deploy("home_assistant")
def apply_home_assistant() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    wanted = {f.dest: f for f in configs.host_files(inv, name)}
    if not wanted:
        _remove()
        return
    assert inv.monitoring is not None and inv.monitoring.home_assistant is not None
    ha = inv.monitoring.home_assistant
    # on the deploying machine, before any change: a missing or unreadable secret stops here
    password = _password(ha.password) if ha.password else None
    ca = Path(ha.ca_file).expanduser().read_text() if ha.ca_file else None

    packages_installed("MQTT client (Debian's python3-paho-mqtt)", configs.PACKAGES, no_recommends=True)
    paths.directory(name="Publisher secrets folder", path=configs.CONFIG_DIR, mode="0700")
    changed = []
    if password is not None:
        changed.append(validated_put(name="Broker password (0600)", content=password + "\n", dest=configs.PASSWORD,
                                     validate="test -s {path}", mode="0600", secret=True))  # fmt: skip
    else:
        paths.file(name="No broker password (the broker takes anonymous clients)", path=configs.PASSWORD,
                   present=False)  # fmt: skip
    if ca is not None:
        changed.append(config_files.put(name="Broker CA certificate", src=StringIO(ca), dest=configs.CA_FILE,
                                        mode="0644"))
    script, config = (config_files.put(name=Path(dest).name, src=StringIO(wanted[dest].render()), dest=dest,
                                       mode=wanted[dest].mode)
                      for dest in (configs.SCRIPT, configs.CONFIG))
    unit = config_files.put(name=configs.UNIT, src=StringIO(wanted[configs.UNIT_FILE].render()),
                            dest=configs.UNIT_FILE, mode="0644")
    systemd.daemon_reload(name="Reload systemd (publisher unit changed)", _if=unit.did_change)
    services.service(name="Home Assistant publisher enabled and running", service=configs.UNIT, running=True,
                     enabled=True)  # fmt: skip
    systemd.service(name="Restart the publisher (its program, settings or secrets changed)", service=configs.UNIT,
                    restarted=True, _if=any_changed(script, config, unit, *changed))  # fmt: skip


apply_home_assistant()
