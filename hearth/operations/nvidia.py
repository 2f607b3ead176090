"""NVIDIA: the GPUs against the inventory, reboots for a new driver, k3s's nvidia runtime.

Each operation decides when it executes (pyinfra re-runs an operation's body then),
from facts read at that moment: after the packages before it are installed.
"""

from __future__ import annotations

import shlex

from pyinfra import host, logger, state
from pyinfra.api import StringCommand, operation
from pyinfra.operations import server

from hearth.drift import report
from hearth.facts.hardware import Hardware
from hearth.facts.nvidia import K3sRuntime, NvidiaKernel
from hearth.inventory import load_cached


def _fail(message: str) -> StringCommand:
    return StringCommand(f"printf '%s\\n' {shlex.quote(message)} >&2; exit 1")


@operation()
def gpus_match_inventory(inventory: str, host_name: str, nvidia_smi: str = "nvidia-smi",
                         driver_branch: str | None = None):  # fmt: skip
    """
    Compare the GPUs nvidia-smi reports with the inventory; re-plan VRAM on them.

    No GPU where the inventory declares one, or serving settings that no longer
    fit the detected cards, fail the host with the drift report (so the serving
    roles after this do not roll out); drift that still fits is reported as a
    warning. Nothing is changed on the host.

    + inventory: path of the inventory YAML
    + host_name: this host's name in it
    + nvidia_smi: the program to ask
    + driver_branch: the pinned branch (a different driver is drift); None = not checked

    **Example:**

    .. code:: python

        nvidia.gpus_match_inventory(name="GPUs match the inventory", inventory="inventory/lab.yml",
                                    host_name="gpu1", driver_branch="535")
    """
    fact = host.get_fact(Hardware, nvidia_smi=nvidia_smi)
    if not state.is_executing and fact.nvidia.status == "absent":
        host.noop("nvidia-smi is not installed yet (checked after the install)")
        return
    text, refuse = report(load_cached(inventory), host_name, fact, driver_branch)
    if refuse:
        yield _fail(text)
    elif text and state.is_executing:
        logger.warning(text)
    else:
        host.noop("GPUs as the inventory says")


@operation()
def reboot_for_driver(allow: bool, timeout: int = 600):
    """
    Reboot when the installed driver cannot be used until then (nouveau still loaded,
    or a loaded nvidia module older than the one on disk), if ``allow``; otherwise
    fail the host saying so. Never reboots silently, never inside a container (its
    kernel belongs to the machine hosting it). Run it with ``_serial=True``: one host
    at a time.

    + allow: the inventory's ``allow_reboot`` for this host
    + timeout: seconds to wait for the host to come back

    **Example:**

    .. code:: python

        nvidia.reboot_for_driver(name="Reboot for the driver", allow=False, _serial=True)
    """
    kernel = host.get_fact(NvidiaKernel)
    reason = kernel.reboot_reason()
    if reason is None:
        host.noop("no reboot needed")
        return
    if not allow:
        yield _fail(f"hearth: {host.name} needs a reboot to use the NVIDIA driver ({reason}); set "
                    "allow_reboot: true on the host in the inventory, or reboot it yourself, then re-run")
        return
    logger.warning("hearth: %s reboots now: %s", host.name, reason)
    yield from server.reboot._inner(delay=10, interval=2, reboot_timeout=timeout)


@operation()
def k3s_nvidia_runtime(config: str, runtime: str, timeout: int = 120):
    """
    k3s on this host uses the nvidia runtime: restart it when the container toolkit is
    newer than the running k3s (or its containerd config lacks the runtime), then
    wait (bounded) until k3s's generated containerd config names the ``nvidia``
    runtime. Nothing when k3s is not running here or all is in place.

    + config: k3s's generated containerd config
    + runtime: the nvidia-container-runtime binary
    + timeout: seconds to wait for the generated config

    **Example:**

    .. code:: python

        nvidia.k3s_nvidia_runtime(name="k3s has the nvidia runtime",
                                  config="/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
                                  runtime="/usr/bin/nvidia-container-runtime")
    """
    fact = host.get_fact(K3sRuntime, config=config, runtime=runtime)
    if fact.unit is None or fact.runtime_changed is None:
        host.noop("k3s is not running here (it finds the runtime when it starts)")
        return
    if fact.config_has_nvidia and fact.runtime_changed <= fact.active_since:
        host.noop("k3s's containerd already has the nvidia runtime")
        return
    yield StringCommand("systemctl", "restart", fact.unit)
    quoted = shlex.quote(config)
    yield StringCommand(
        f"end=$(($(date +%s)+{int(timeout)})); "
        f"until grep -Eq {shlex.quote(K3sRuntime.PATTERN)} {quoted} 2>/dev/null; do "
        f"if [ $(date +%s) -ge $end ]; then echo 'hearth: {fact.unit} restarted but {config} "
        f"has no nvidia runtime after {int(timeout)}s' >&2; exit 1; fi; sleep 1; done"
    )
