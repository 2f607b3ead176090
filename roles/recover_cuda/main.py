"""Role recover_cuda: CUDA recovery (seed 002) on GPU hosts that run vLLM or Ollama.

`hearth-recover-cuda.service` (started on demand only) stops the host's GPU
services, reloads `nvidia_uvm` and starts them again in start order. Unless the
host serves a terminal route, a socket on its overlay address lets the gateway's
`POST /admin/recover-cuda/<host>` start it: the host holds a token derived from the
admin token (0600, written without a diff), never the admin token itself.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from hearth.configs import recover_cuda as configs
from hearth.facts.system import PathExists
from hearth.gateway.recover import trigger_token
from hearth.inventory import SecretError, load_cached, resolve_secret
from hearth.operations import config_files, paths, services
from hearth.operations.files import validated_put


@deploy("recover_cuda")
def apply_recover_cuda() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    wanted = configs.host_files(inv, name)
    if not wanted:
        return
    token = None
    if configs.triggerable(inv, name):
        assert inv.gateway is not None
        try:
            token = trigger_token(resolve_secret(inv.gateway.admin_token), name)
        except SecretError as exc:
            raise SecretError(f"gateway.admin_token: {exc}") from None

    paths.directory(name="Config directory", path=str(Path(configs.TOKEN).parent), mode="0755")
    puts = [
        config_files.put(name=f"{Path(f.dest).name}", src=StringIO(f.render()), dest=f.dest, mode=f.mode)
        for f in wanted
    ]
    if token is not None:
        validated_put(name="Trigger token (0600, derived from the admin token)", content=token + "\n",
                      dest=configs.TOKEN, validate="test -s {path}", mode="0600")
    else:  # a terminal route's host: the operator recovers it, the gateway never does
        services.service(name="No recovery trigger (terminal route host)", service="hearth-recover-cuda-trigger.socket",
                         running=False, enabled=False, _if=lambda: host.get_fact(PathExists, path=configs.SOCKET))
        for path in (configs.SOCKET, configs.TRIGGER_UNIT, configs.TRIGGER, configs.TOKEN):
            puts.append(paths.file(name=f"Remove {Path(path).name}", path=path, present=False))
    systemd.daemon_reload(name="Reload systemd (recovery units changed)", _if=any_changed(*puts))
    if token is not None:
        services.service(name="Recovery trigger listening on the overlay", service="hearth-recover-cuda-trigger.socket",
                         running=True, enabled=True)


apply_recover_cuda()
