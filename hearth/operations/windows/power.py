"""The power plan of a Windows host: sleep after idle, hibernate, fast startup, wake timers."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from hearth import powershell as ps
from hearth.facts.windows import PowerSetting, RegistryValues
from hearth.operations.windows import run

POWER_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Power"
SESSION_POWER_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Power"
WAKE_TIMERS = {"disable": 0, "enable": 1, "important": 2}


@operation()
def sleep_after(minutes: int):
    """
    Sleep after ``minutes`` idle on AC and battery (``0`` = never), via
    ``powercfg /change standby-timeout-ac|dc``. Read back from the active plan's
    ``SUB_SLEEP STANDBYIDLE`` (seconds).

    **Example:**

    .. code:: python

        power.sleep_after(name="Sleep after 15 idle minutes", minutes=15)
    """
    now = host.get_fact(PowerSetting, subgroup="SUB_SLEEP", setting="STANDBYIDLE") or {}
    changed = False
    for line in ("ac", "dc"):
        if now.get(line) != minutes * 60:
            changed = True
            yield run(ps.native(f"powercfg.exe /change standby-timeout-{line} {int(minutes)}"))
    if not changed:
        host.noop(f"sleeps after {minutes} idle minutes" if minutes else "never sleeps on idle")


@operation()
def wake_timers(mode: str):
    """
    Allow wake timers (``enable``), only important ones (``important``) or none
    (``disable``) in the active plan (``SUB_SLEEP RTCWAKE``), on AC and battery.
    A scheduled task that wakes the box keeps it from sleeping the way the gateway expects.

    **Example:**

    .. code:: python

        power.wake_timers(name="No wake timers", mode="disable")
    """
    value = WAKE_TIMERS[mode]
    now = host.get_fact(PowerSetting, subgroup="SUB_SLEEP", setting="RTCWAKE") or {}
    lines = [ps.native(f"powercfg.exe /set{line}valueindex SCHEME_CURRENT SUB_SLEEP RTCWAKE {value}")
             for line in ("ac", "dc") if now.get(line) != value]
    if lines:
        yield run(*lines, ps.native("powercfg.exe /setactive SCHEME_CURRENT"))
    else:
        host.noop(f"wake timers: {mode}")


@operation()
def hibernate(enabled: bool):
    """
    Turn hibernation on or off (``powercfg /hibernate on|off``; off also removes
    hiberfil.sys and with it fast startup). Read from ``HibernateEnabled``.

    **Example:**

    .. code:: python

        power.hibernate(name="Hibernate off", enabled=False)
    """
    now = (host.get_fact(RegistryValues, path=POWER_KEY) or {}).get("HibernateEnabled")
    if now != ("1" if enabled else "0"):
        yield run(ps.native(f"powercfg.exe /hibernate {'on' if enabled else 'off'}"))
    else:
        host.noop(f"hibernate is {'on' if enabled else 'off'}")


@operation()
def registry_dword(path: str, value_name: str, value: int):
    """
    Set a DWORD registry value when it differs (the key must exist).

    **Example:**

    .. code:: python

        power.registry_dword(name="Fast startup off", path=power.SESSION_POWER_KEY,
                             value_name="HiberbootEnabled", value=0)
    """
    now = (host.get_fact(RegistryValues, path=path) or {}).get(value_name)
    if now != str(int(value)):
        yield run(f"Set-ItemProperty -LiteralPath {ps.quote(path)} -Name {ps.quote(value_name)} "
                  f"-Value {int(value)} -Type DWord")
    else:
        host.noop(f"{value_name} is {value}")

