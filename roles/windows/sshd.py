"""windows | sshd: the OpenSSH server's config (keys only), validated by sshd -t; running; the
gateway's tunnel key where the box is reached by SSH tunnel."""

from pyinfra import host
from pyinfra.api import deploy

from hearth import powershell as ps
from hearth.configs import tunnel
from hearth.configs import windows as configs
from hearth.inventory import load_cached
from hearth.operations.windows import files, service, ssh_keys


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
    # reach ssh_tunnel: the gateway host's tunnel key, good for forwarding to the serve ports only
    if name in tunnel.tunnel_hosts(inv):
        ports = ", ".join(f"127.0.0.1:{remote}" for _, remote in tunnel.forwards(inv, name))
        what = f"Gateway's tunnel key (forwarding to {ports} only)"
    else:
        what = "No gateway tunnel key (not reached by SSH tunnel)"
    ssh_keys.tunnel_key(name=what, inventory=host.data.hearth_inventory, host_name=name, path=configs.ADMIN_KEYS)


apply_sshd()
