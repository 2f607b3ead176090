"""LM Studio on a Windows host: hearth does not install it, it checks the server answers."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, operation

from hearth.facts.windows import HttpModels


@operation()
def serves(url: str, models: list[str]):
    """
    Check that the LM Studio server at ``url`` (asked on the box itself) answers
    ``/v1/models`` and lists every model in ``models``. Changes nothing; a server
    that does not answer, or lacks a model, fails the host with what to do.

    **Example:**

    .. code:: python

        lmstudio.serves(name="LM Studio answers", url="http://10.77.0.50:1234", models=["gemma-4-31b"])
    """
    listed = host.get_fact(HttpModels, url=url)
    if listed is None:
        raise OperationError(
            f"LM Studio does not answer at {url}/v1/models: start its server (Developer tab, or "
            "`lms server start`) with 'Serve on Local Network' on and the port the inventory says")
    missing = [model for model in models if model not in listed]
    if missing:
        raise OperationError(f"LM Studio at {url} does not list {', '.join(missing)} "
                             f"(it lists: {', '.join(listed) or 'nothing'}): load or download it")
    host.noop(f"LM Studio at {url} serves {', '.join(models)}")
    return
    yield  # an operation is a generator
