"""Role gateway: hearth's OpenAI-compatible gateway on the inventory's gateway host.

Its own user and virtualenv; the code (hearth.gateway only) synced from this
checkout; the policy rendered from the inventory and validated on the host before
it replaces the old one; the admin token and cloud keys as 0600 files; a hardened
unit listening on loopback and the overlay only. A policy or secret change reloads
the gateway (SIGHUP); only code, dependency or unit changes restart it.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, pip, systemd
from pyinfra.operations.util import any_changed

from hearth.configs import gateway as configs
from hearth.gateway.from_inventory import admin_token_path, cloud_key_path
from hearth.inventory import Inventory, SecretError, load_cached, resolve_secret
from hearth.operations import accounts, config_files, paths, services
from hearth.operations import pip as pip_ops
from hearth.operations.apt import packages_installed
from hearth.operations.files import validated_put

PACKAGE = Path(__file__).resolve().parents[2] / "hearth"


def secrets(inv: Inventory) -> dict[str, str]:
    """Destination path -> secret, resolved on this machine before anything changes."""
    assert inv.gateway is not None
    wanted = {admin_token_path(): ("gateway.admin_token", inv.gateway.admin_token)}
    for provider, cloud in inv.clouds.items():
        wanted[cloud_key_path(provider)] = (f"clouds.{provider}.api_key", cloud.api_key)
    resolved = {}
    for dest, (key, ref) in wanted.items():
        try:
            resolved[dest] = resolve_secret(ref)
        except SecretError as exc:
            raise SecretError(f"{key}: {exc}") from None
    return resolved


def index_args(url: str) -> str:
    """pip arguments for the package index; a plain-HTTP index (a LAN mirror) must be trusted by name."""
    args = f"--index-url {url}"
    if url.startswith("http://"):
        args += f" --trusted-host {urlsplit(url).hostname}"
    return args


def install_code() -> list:
    """Sync hearth.gateway (and the package marker) into the gateway's source tree."""
    marker = config_files.put(name="Gateway code: package marker", src=str(PACKAGE / "__init__.py"),
                              dest=f"{configs.SRC}/hearth/__init__.py")
    code = files.sync(name="Gateway code: hearth.gateway", src=str(PACKAGE / "gateway"),
                      dest=f"{configs.SRC}/hearth/gateway", delete=True, exclude=["*.pyc", "__pycache__"])
    return [marker, code]


@deploy("gateway")
def apply_gateway() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    secret_files = secrets(inv)
    policy_file, unit_file = configs.host_files(inv, name, {"resolve": resolve_secret})

    packages_installed("Python virtualenv support", ["python3-venv"])
    accounts.group(name=f"Group {configs.USER}", group=configs.USER, system=True)
    accounts.user(name=f"User {configs.USER} (system, no login)", user=configs.USER, group=configs.USER,
                  system=True, home=configs.STATE, shell="/usr/sbin/nologin")
    paths.directory(name="State directory", path=configs.STATE, user=configs.USER, group=configs.USER, mode="0750")
    paths.directory(name="Log directory", path=configs.LOGS, user=configs.USER, group=configs.USER, mode="0750")
    paths.directory(name="Config directory", path=configs.ETC, group=configs.USER, mode="0750")
    paths.directory(name="Secrets directory", path=f"{configs.ETC}/secrets", user=configs.USER,
                    group=configs.USER, mode="0700")

    venv = pip.venv(name="Virtualenv", path=configs.VENV, python="python3")
    deps = pip_ops.pinned(name="Gateway dependencies (pinned)", virtualenv=configs.VENV,
                          requirements=list(host.data.gateway_python_packages),
                          install_args=index_args(host.data.pip_index_url))
    code = install_code()

    secret_ops = [
        validated_put(name=f"Secret {Path(dest).name} (0600)", content=secret + "\n", dest=dest,
                      validate="test -s {path}", mode="0600", user=configs.USER, group=configs.USER,
                      secret=True)
        for dest, secret in secret_files.items()
    ]
    policy = validated_put(
        name="Policy from the inventory (validated on the host)", content=policy_file.render(),
        dest=policy_file.dest, mode=policy_file.mode, group=policy_file.group,
        validate=f"PYTHONPATH={configs.SRC} {configs.VENV}/bin/python -m hearth.gateway check --config {{path}}",
    )
    unit = config_files.put(name="Gateway unit (hardened)", src=StringIO(unit_file.render()), dest=unit_file.dest,
                            mode=unit_file.mode)

    restart = any_changed(venv, deps, unit, *code)
    systemd.daemon_reload(name="Reload systemd (unit changed)", _if=unit.did_change)
    services.service(name="Gateway enabled and running", service="hearth-gateway", enabled=True, running=True)
    systemd.service(name="Restart gateway (code, dependencies or unit changed)", service="hearth-gateway",
                    restarted=True, _if=restart)
    systemd.service(name="Reload gateway (policy or secrets changed)", service="hearth-gateway", reloaded=True,
                    _if=lambda: any_changed(policy, *secret_ops)() and not restart())


apply_gateway()
