"""Operations that wait for, or report on, HTTP services; no change when all is well."""

from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import StringCommand, operation

from hearth.facts.http import OpenAIModels


@operation()
def model_ready(base_url: str, model: str, timeout_s: float, health: bool = True):
    """
    Wait until an OpenAI-compatible server answers ``/health`` (with ``health``) and
    lists ``model`` on ``/v1/models``; fail at the deadline. No change when it
    already does, so a converged host reports nothing.

    + base_url: ``http://HOST:PORT`` as seen from the host
    + model: the served name that must be listed
    + timeout_s: how long to wait before failing

    **Example:**

    .. code:: python

        http.model_ready(
            name="qwen2.5-vl-7b ready",
            base_url="http://10.77.0.11:8000",
            model="qwen2.5-vl-7b-router-awq",
            timeout_s=900,
        )
    """
    if model in (host.get_fact(OpenAIModels, base_url=base_url, health=health) or []):
        host.noop(f"{model} answers at {base_url}")
        return
    base = base_url.rstrip("/")
    listed = shlex.quote('"' + model + '"')  # the id as it appears in the JSON
    check = f"curl -fsS -m 5 {shlex.quote(base + '/v1/models')} | grep -qF {listed}"
    if health:
        check = f"curl -fsS -m 5 -o /dev/null {shlex.quote(base + '/health')} && {check}"
    deadline = max(1, int(timeout_s))
    yield StringCommand(
        f"end=$(($(date +%s)+{deadline})); until {check}; do "
        f"[ $(date +%s) -ge $end ] && {{ echo {shlex.quote(f'{model} not ready at {base} after {deadline}s')} >&2; "
        "exit 1; }; "
        "sleep 1; done"
    )


@operation()
def upstream_answers(base_url: str, model: str, label: str):
    """
    Report whether an upstream hearth does not install (LM Studio, any OpenAI-compatible
    server) answers ``/v1/models`` with ``model``, asked from this host. Never
    changes anything and never fails the deploy: a missing or wrong upstream is a
    warning in the output.

    + base_url: the upstream's base URL (``.../v1`` suffix allowed)
    + model: the served name the inventory routes to
    + label: how to name it in the report (host/serve)

    **Example:**

    .. code:: python

        http.upstream_answers(
            name="mouth answers /v1/models",
            base_url="http://10.77.0.50:1234",
            model="gemma-4-31b",
            label="mouth/gemma-4-31b",
        )
    """
    base = base_url.rstrip("/").removesuffix("/v1")
    models = host.get_fact(OpenAIModels, base_url=base)
    if models is None:
        message = f"upstream {label}: {base}/v1/models does not answer from {host.name}"
    elif model not in models:
        message = f"upstream {label}: {base}/v1/models answers without {model} (lists {', '.join(models) or 'nothing'})"
    else:
        host.noop(f"upstream {label} answers with {model}")
        return
    logger.warning(f"hearth: {message}")
    host.noop(f"WARNING {message}")
    yield from ()  # a report only: nothing to run, but pyinfra iterates an operation's commands
