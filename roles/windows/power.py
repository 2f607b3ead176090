"""windows | power: sleep after the inventory's idle minutes, hibernate and fast startup off, wake timers."""

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import power


@deploy("windows power")
def apply_power() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    spec = configs.spec(inv.hosts[name])
    minutes = configs.idle_minutes(inv, name)
    power.sleep_after(name=f"Sleep after {minutes} idle minutes" if minutes else "Never sleep on idle",
                      minutes=minutes)
    power.hibernate(name=f"Hibernate {'on' if spec.hibernate else 'off'}", enabled=spec.hibernate)
    power.registry_dword(name="Fast startup off (a fast-started box may not wake on LAN)",
                         path=power.SESSION_POWER_KEY, value_name="HiberbootEnabled", value=0)
    power.wake_timers(name=f"Wake timers: {spec.wake_timers}", mode=spec.wake_timers)


apply_power()
