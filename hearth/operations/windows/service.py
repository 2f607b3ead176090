"""Windows services and scheduled tasks: present, started, restarted on change."""

from __future__ import annotations

import hashlib

from pyinfra import host, state
from pyinfra.api import OperationError, operation

from hearth import powershell as ps
from hearth.facts.windows import ScheduledTask, Service
from hearth.operations.windows import run


@operation()
def service_running(service: str, start_type: str = "Automatic"):
    """
    A Windows service starts with the machine (``start_type``) and is running.
    A service still absent when this executes is an error (hearth installs no
    program; while planning, an earlier step may still be about to create it).

    **Example:**

    .. code:: python

        service.service_running(name="sshd runs", service="sshd")
    """
    now = host.get_fact(Service, service=service) or {}
    if not now and state.is_executing:
        raise OperationError(f"service {service} does not exist on this host")
    if now.get("StartType") != start_type:
        yield run(f"Set-Service -Name {ps.quote(service)} -StartupType {start_type}")
    if now.get("Status") != "Running":
        yield run(f"Start-Service -Name {ps.quote(service)}")
    if now.get("StartType") == start_type and now.get("Status") == "Running":
        host.noop(f"{service} is running ({start_type})")


def task_stamp(execute: str, arguments: str, user: str, delay_s: int = 0) -> str:
    """The stamp hearth writes in a task's Description: a hash of its definition."""
    digest = hashlib.sha256(f"{execute}\0{arguments}\0{user}\0{delay_s}".encode()).hexdigest()[:16]
    return f"hearth {digest}"


@operation()
def startup_task(task: str, execute: str, arguments: str = "", user: str = "SYSTEM", delay_s: int = 0):
    """
    A scheduled task that starts ``execute`` when the machine boots (``delay_s``
    later: e.g. once the overlay tunnel holds the address the program binds), as
    ``user``, with no time limit and restarted if it fails. Registered again only
    when its definition changed (its Description carries a stamp of it).

    **Example:**

    .. code:: python

        service.startup_task(name="Ollama starts at boot", task="hearth-ollama",
                             execute=r"C:\\Program Files\\Ollama\\ollama.exe", arguments="serve")
    """
    stamp = task_stamp(execute, arguments, user, delay_s)
    now = host.get_fact(ScheduledTask, task=task) or {}
    if now.get("Description") == stamp:
        host.noop(f"task {task} is registered")
        return
    args = f" -Argument {ps.quote(arguments)}" if arguments else ""
    yield run(
        f"$action = New-ScheduledTaskAction -Execute {ps.quote(execute)}{args}",
        "$trigger = New-ScheduledTaskTrigger -AtStartup",
        *([f"$trigger.Delay = 'PT{int(delay_s)}S'"] if delay_s else []),
        f"$principal = New-ScheduledTaskPrincipal -UserId {ps.quote(user)} -LogonType ServiceAccount -RunLevel Highest",
        "$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 3 "
        "-RestartInterval (New-TimeSpan -Minutes 1) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries",
        f"Register-ScheduledTask -TaskName {ps.quote(task)} -TaskPath '\\' -Action $action -Trigger $trigger "
        f"-Principal $principal -Settings $settings -Description {ps.quote(stamp)} -Force | Out-Null",
    )


@operation()
def task_running(task: str):
    """
    Start a scheduled task unless it is running.

    **Example:**

    .. code:: python

        service.task_running(name="Ollama is running", task="hearth-ollama")
    """
    now = host.get_fact(ScheduledTask, task=task) or {}
    if now.get("State") == "Running":
        host.noop(f"task {task} is running")
        return
    yield run(f"Start-ScheduledTask -TaskPath '\\' -TaskName {ps.quote(task)}")


@operation(is_idempotent=False)
def task_restarted(task: str, process: str):
    """
    Restart a scheduled task's program: stop the task, stop every ``process``
    (by name, e.g. ``ollama``: the tray app may have started one too), start the
    task. Always a change: call it with ``_if=`` on what makes it needed.

    **Example:**

    .. code:: python

        service.task_restarted(name="Restart Ollama (environment changed)", task="hearth-ollama",
                               process="ollama", _if=env_op.did_change)
    """
    yield run(
        f"Stop-ScheduledTask -TaskPath '\\' -TaskName {ps.quote(task)}",
        f"Get-Process -Name {ps.quote(process)} -ErrorAction SilentlyContinue | Stop-Process -Force",
        f"Start-ScheduledTask -TaskPath '\\' -TaskName {ps.quote(task)}",
    )


@operation(is_idempotent=False)
def service_restarted(service: str):
    """
    Restart a Windows service. Always a change: call it with ``_if=``.

    **Example:**

    .. code:: python

        service.service_restarted(name="Restart sshd", service="sshd", _if=config.did_change)
    """
    yield run(f"Restart-Service -Name {ps.quote(service)} -Force")
