"""windows | sshd: the OpenSSH server's config (keys only), validated by sshd -t; running."""

from pyinfra import host
from pyinfra.api import deploy

from hearth import powershell as ps
from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import files, service


@deploy("windows sshd")
def apply_sshd() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    sshd_exe = configs.paths(inv, name)["windows_sshd_exe"]
    config = configs.sshd_config(inv, name)
    changed = files.file_content(
        name="sshd_config: keys only, administrators' keys file (checked by sshd -t)",
        path=config.dest, content=config.render(),
        validate=f"& {ps.quote(sshd_exe)} -t -f {{path}}",
    )
    service.service_running(name="sshd starts at boot and runs", service="sshd")
    # Existing sessions (this one) survive a restart: each is its own sshd process.
    service.service_restarted(name="Restart sshd (config changed)", service="sshd", _if=changed.did_change)


apply_sshd()
