"""windows | ollama: machine environment from the inventory, `ollama serve` at boot, restart on change, models."""

from pyinfra import host
from pyinfra.api import deploy

from hearth.configs import ollama as ollama_configs
from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import env, service
from hearth.operations.windows import ollama as ollama_ops


@deploy("windows ollama")
def apply_ollama() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    environment = configs.ollama_environment(inv, name)
    if not environment:
        return
    paths = configs.paths(inv, name)
    task = paths["windows_ollama_task"]
    changed = env.machine_env(name="Ollama environment: " + ", ".join(f"{k}={v}" for k, v in environment.items()),
                              values=environment)
    registered = service.startup_task(name="Ollama serves from boot (scheduled task, before any logon)",
                                      task=task, execute=paths["windows_ollama_exe"], arguments="serve",
                                      delay_s=configs.OLLAMA_START_DELAY_S if configs.on_overlay(inv, name) else 0)
    service.task_restarted(name="Restart Ollama (environment or task changed)", task=task, process="ollama",
                           _if=[lambda: changed.did_change() or registered.did_change()])
    service.task_running(name="Ollama is running", task=task)
    address = environment["OLLAMA_HOST"]
    for serve in ollama_configs.ollama_serves(inv, name):
        ollama_ops.model_pulled(name=f"Model {serve.model} pulled", exe=paths["windows_ollama_exe"],
                                model=serve.model, address=address)


apply_ollama()
