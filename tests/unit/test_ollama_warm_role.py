"""roles/ollama/main.py planned by pyinfra against fake facts (no host is connected to), for
hearth-ollama-warm.service: the always-on lab2 box with a warm model as the first deploy
leaves it plans zero changes (no daemon-reload, the unit enabled already); the unit is put
and enabled when it is missing; once the inventory keeps no model warm, it is disabled and
removed, with one daemon-reload, and a box that never had it plans nothing about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from hearth.configs import ollama as configs
from hearth.deploy_data import group_defaults
from hearth.facts.ollama import model_tag
from hearth.inventory import Inventory, load_inventory
from tests.unit.role_plan import Steps, account_of, directory_listing, plan_roles

REPO = Path(__file__).resolve().parents[2]
HOST = "den-mini"
WARM_STEPS = {"put": f"Unit {configs.WARM_SERVICE} (loads the warm models at every Ollama start)",
              "enable": f"{configs.WARM_SERVICE} enabled (loads the warm models at every start of Ollama)",
              "disable": f"{configs.WARM_SERVICE} disabled (no model kept warm)",
              "remove": f"No {configs.WARM_SERVICE} (no model kept warm)",
              "reload": "Reload systemd (a unit changed)"}


def inventory(tmp_path: Path, keep_warm: bool) -> Path:
    """lab2, with its warm model (keep_alive -1) or with that model on demand (24h)."""
    data = yaml.safe_load((REPO / "inventory" / "lab2.yml").read_text())
    if not keep_warm:
        for serve in data["hosts"][HOST]["serves"]:
            serve["keep_alive"] = "24h"
    path = tmp_path / f"lab2-{'warm' if keep_warm else 'cold'}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def deployed(inv: Inventory, warm_unit: bool) -> dict[str, Any]:
    """The box as a deploy of ``inv`` leaves it (``warm_unit``: with the warm loader in place)."""
    version = str(inv.settings["ollama_version"])
    assets = configs.release_assets(version, inv.hosts[HOST].arch, str(inv.settings["ollama_url"]),
                                    dict(inv.settings["ollama_sha256"]), [])
    install = configs.install_dir(assets, version)
    units = {f.dest: f.render() for f in configs.host_files(inv, HOST)}
    if not warm_unit:
        units.pop(configs.WARM_UNIT, None)
    serves = configs.ollama_serves(inv, HOST)
    return {
        "packages": {"zstd": ["1.5.4"]}, "groups": ["render", "video", "ollama"],
        "users": {"ollama": {"home": "/var/lib/ollama", "shell": "/usr/sbin/nologin", "group": "ollama",
                             "groups": ["render", "video"], "comment": None, "uid": 998, "gid": 998}},
        "dirs": {"/var/lib/ollama": ("ollama", "ollama", 755), configs.MODELS: ("ollama", "ollama", 750),
                 configs.CACHE: ("root", "root", 755), "/etc/systemd/system": ("root", "root", 755),
                 configs.INSTALLS: ("root", "root", 755)},
        "files": {**{a.cached: ("root", "root", 644) for a in assets}, f"{install}/bin/ollama": ("root", "root", 755),
                  **{dest: ("root", "root", 644) for dest in units}},
        "sha1": {dest: hashlib.sha1(text.encode()).hexdigest() for dest, text in units.items()},
        "sha256": {a.cached: a.sha256 for a in assets},
        "links": {configs.BINARY: f"{install}/bin/ollama"},
        "entries": {configs.INSTALLS: [PurePosixPath(install).name],
                    configs.CACHE: [PurePosixPath(a.cached).name for a in assets]},
        "running": {"ollama.service": True, configs.WARM_SERVICE: False},  # a oneshot: done, inactive
        "enabled": {"ollama.service": True, **({configs.WARM_SERVICE: True} if warm_unit else {})},
        "models": [model_tag(s.model) for s in serves],
        "loaded": [model_tag(s.model) for s in configs.warm_serves(inv, HOST)],
    }


def answer(box: dict[str, Any], cls: type, kwargs: dict[str, Any]) -> Any:
    """The fact ``cls`` on ``box``."""
    name = cls.__name__
    simple = {"Os": "Linux", "TmpDir": "/tmp", "DebPackages": box["packages"], "Groups": box["groups"],
              "Users": box["users"], "SystemdStatus": box["running"], "SystemdEnabled": box["enabled"],
              "OllamaModels": box["models"], "OllamaLoaded": box["loaded"], "OllamaModelInfo": None,
              "UnitFileStates": {unit: "enabled" if on else "disabled" for unit, on in box["enabled"].items()}}
    if name in simple:
        return simple[name]
    if name == "Which":
        return f"/usr/bin/{kwargs['command']}"
    if name == "Account":
        return account_of(box["users"], kwargs["user"])
    if name == "DirectoryListing":
        return directory_listing(box["files"], box["sha1"], kwargs["path"], box["dirs"])
    if name in ("File", "Directory"):
        entry = box["files" if name == "File" else "dirs"].get(kwargs["path"])
        return {"user": entry[0], "group": entry[1], "mode": entry[2]} if entry else None
    if name == "Link":
        target = box["links"].get(kwargs["path"])
        return {"link_target": target, "user": "root", "group": "root"} if target else None
    if name in ("Sha1File", "Sha256File"):
        return box["sha1" if name == "Sha1File" else "sha256"].get(kwargs["path"])
    if name == "DirectoryEntries":
        return box["entries"].get(kwargs["path"], [])
    raise AssertionError(f"unexpected fact {name} {kwargs}")


def plan(monkeypatch: pytest.MonkeyPatch, path: Path, box: Callable[[Inventory], dict[str, Any]]) -> Steps:
    inv = load_inventory(path, group_defaults())
    state = box(inv)
    return plan_roles(monkeypatch, inv, path, ["roles/ollama/main.py"], [HOST],
                      lambda host, cls, kwargs: answer(state, cls, kwargs))[HOST]


def changed(steps: Steps) -> list[str]:
    return [step for step, runs in steps if runs]


def test_a_second_deploy_changes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    steps = plan(monkeypatch, inventory(tmp_path, keep_warm=True), lambda inv: deployed(inv, warm_unit=True))
    assert changed(steps) == [], steps
    names = [step for step, _ in steps]
    assert WARM_STEPS["put"] in names and WARM_STEPS["enable"] in names  # planned, with nothing to do
    assert WARM_STEPS["disable"] not in names and WARM_STEPS["remove"] not in names


def test_a_missing_warm_unit_is_put_enabled_and_reloaded_once(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    steps = plan(monkeypatch, inventory(tmp_path, keep_warm=True), lambda inv: deployed(inv, warm_unit=False))
    assert changed(steps) == [WARM_STEPS["put"], WARM_STEPS["reload"], WARM_STEPS["enable"]]  # Ollama not restarted


def test_a_warm_unit_the_inventory_no_longer_wants_is_removed(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    warm_box = deployed(load_inventory(inventory(tmp_path, keep_warm=True), group_defaults()), warm_unit=True)
    cold = inventory(tmp_path, keep_warm=False)

    def left_warm(inv: Inventory) -> dict[str, Any]:  # the unit files as the warm deploy left them
        box = deployed(inv, warm_unit=False)
        for key in ("files", "sha1", "enabled"):
            box[key] = {**box[key], **{k: v for k, v in warm_box[key].items() if configs.WARM_SERVICE in k}}
        box["loaded"] = []
        return box

    steps = plan(monkeypatch, cold, left_warm)
    assert changed(steps) == [WARM_STEPS["disable"], WARM_STEPS["remove"], WARM_STEPS["reload"]], steps
    # and once it is gone, nothing about it is planned to change
    assert changed(plan(monkeypatch, cold, lambda inv: deployed(inv, warm_unit=False))) == []
