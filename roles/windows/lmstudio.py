"""windows | lmstudio: hearth does not install LM Studio; it checks the server answers with its models."""

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import lmstudio


@deploy("windows lmstudio")
def apply_lmstudio() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    url = configs.lmstudio_url(inv, name)
    if url is None:
        return
    models = [s.model for s in inv.hosts[name].serves if s.engine == "lmstudio"]
    lmstudio.serves(name=f"LM Studio answers at {url}/v1/models with {', '.join(models)}", url=url, models=models)


apply_lmstudio()
