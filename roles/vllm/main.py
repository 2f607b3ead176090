"""Role vllm: one systemd unit per vLLM-served model, started one at a time.

vLLM is pip-installed, pinned to `vllm_version`, into its own virtualenv from
`vllm_index_url` (or `pip_index_url`), and runs as the system user `vllm`. The
Hugging Face cache lives in `vllm_hf_home`; a token (`vllm_hf_token`, a secret
reference resolved on the deploying machine) is a 0600 file the service reads,
written without a diff. Units come from hearth.configs.vllm; they start in the
inventory's start order, each healthy on /health and /v1/models before the next;
a changed unit restarts that model alone, a new vLLM restarts them all (in order).
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FindFiles
from pyinfra.operations import pip, systemd
from pyinfra.operations.util import any_changed

from hearth.configs import vllm as configs
from hearth.inventory import SecretError, load_cached, resolve_secret
from hearth.operations import accounts, config_files, http, paths, services
from hearth.operations import pip as pip_ops
from hearth.operations.apt import packages_installed
from hearth.operations.files import validated_put


def index_args(url: str) -> str:
    """pip arguments for the package index; a plain-HTTP index (a LAN mirror) must be trusted by name."""
    args = f"--index-url {url}"
    if url.startswith("http://"):
        args += f" --trusted-host {urlsplit(url).hostname}"
    return args


def hf_token(ref: str) -> str | None:
    """The Hugging Face token, resolved here before any change; None when not configured."""
    if not ref:
        return None
    try:
        return resolve_secret(ref)
    except SecretError as exc:
        raise SecretError(f"settings.vllm_hf_token: {exc}") from None


@deploy("vllm")
def apply_vllm() -> None:
    inv = load_cached(host.data.hearth_inventory)
    name = host.data.hearth_host
    conf = configs.settings(inv, name)
    token = hf_token(str(conf["vllm_hf_token"] or ""))
    ready_script, *unit_files = configs.host_files(inv, name)
    serves = configs.vllm_serves(inv, name)

    packages_installed("Python virtualenv support", ["python3-venv"])
    accounts.group(name=f"Group {configs.USER}", group=configs.USER, system=True)
    accounts.user(name=f"User {configs.USER} (system, no login)", user=configs.USER, group=configs.USER,
                  system=True, home=configs.STATE, shell="/usr/sbin/nologin")
    paths.directory(name="State directory", path=configs.STATE, user=configs.USER, group=configs.USER, mode="0750")
    paths.directory(name="Hugging Face cache", path=str(conf["vllm_hf_home"]), user=configs.USER,
                    group=configs.USER, mode="0750")
    paths.directory(name="Config directory", path=configs.ETC, group=configs.USER, mode="0750")

    version = str(conf["vllm_version"])
    venv = pip.venv(name="Virtualenv", path=configs.VENV, python="python3")
    package = pip_ops.pinned(name=f"vLLM {version} (pinned)", virtualenv=configs.VENV,
                             requirements=[f"vllm=={version}"],
                             install_args=index_args(str(conf["vllm_index_url"] or conf["pip_index_url"])))
    if token is not None:
        validated_put(name="Hugging Face token (0600)", content=token + "\n", dest=configs.HF_TOKEN,
                      validate="test -s {path}", mode="0600", user=configs.USER, group=configs.USER)
    else:
        paths.file(name="No Hugging Face token configured", path=configs.HF_TOKEN, present=False)

    config_files.put(name="Ready check (/health + /v1/models)", src=StringIO(ready_script.render()),
                     dest=ready_script.dest, mode=ready_script.mode)
    units = [
        config_files.put(name=f"Unit {Path(unit.dest).name}", src=StringIO(unit.render()), dest=unit.dest,
                         mode=unit.mode)
        for unit in unit_files
    ]
    wanted = {Path(unit.dest).name for unit in unit_files}
    present = host.get_fact(FindFiles, path=configs.UNIT_DIR, quote_path=True, maxdepth=1,
                            fname="vllm-*.service") or []
    for stale in sorted(Path(p).name for p in present if Path(p).name not in wanted):
        services.service(name=f"Stop {stale} (no longer in the inventory)", service=stale, running=False,
                         enabled=False)
        units.append(paths.file(name=f"Remove {stale}", path=f"{configs.UNIT_DIR}/{stale}", present=False))
    systemd.daemon_reload(name="Reload systemd (units changed)", _if=any_changed(*units))

    everything = any_changed(venv, package)
    for serve, unit, unit_file in zip(serves, units, unit_files, strict=False):
        service = Path(unit_file.dest).name
        services.service(name=f"{service} enabled", service=service, enabled=True)
        started = services.service(name=f"{service} running (waits until ready)", service=service, running=True)
        systemd.service(name=f"Restart {service} (its unit or vLLM changed)", service=service, restarted=True,
                        _if=lambda unit=unit, started=started: (unit.did_change() or everything())
                        and not started.did_change())
        http.model_ready(name=f"{serve.name} answers /health and /v1/models",
                         base_url=configs.base_url(inv, name, serve), model=serve.name,
                         timeout_s=configs.ready_timeout(serve, conf))


apply_vllm()
