"""Machine-wide environment variables of a Windows host (what Ollama reads at start)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from hearth import powershell as ps
from hearth.facts.windows import RegistryValues
from hearth.operations.windows import run

ENVIRONMENT_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Environment"


@operation()
def machine_env(values: dict[str, str]):
    """
    Set machine environment variables (``[Environment]::SetEnvironmentVariable(...,
    'Machine')``) where they differ from ``values``. Variables not named are left
    alone. Programs read them when they start: restart them when this changed.

    **Example:**

    .. code:: python

        env.machine_env(name="Ollama environment", values={"OLLAMA_KEEP_ALIVE": "0"})
    """
    now = host.get_fact(RegistryValues, path=ENVIRONMENT_KEY) or {}
    stale = {key: value for key, value in values.items() if now.get(key) != value}
    if not stale:
        host.noop("machine environment is as wanted")
        return
    yield run(*(f"[Environment]::SetEnvironmentVariable({ps.quote(k)}, {ps.quote(v)}, 'Machine')"
                for k, v in sorted(stale.items())))
