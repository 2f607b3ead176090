"""The NVIDIA role's files and the cluster manifests, rendered from the example inventory.

Every manifest is checked by kubernetes-validate against the Kubernetes version of the
pinned k3s release, strictly (an unknown field is an error).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hearth.configs import nvidia
from hearth.deploy_data import group_defaults
from hearth.inventory import Inventory, InventoryError, load_inventory

REPO = Path(__file__).resolve().parents[2]
UBUNTU_24 = {"name": "Ubuntu", "major": 24, "minor": 4, "release_meta": {"ID": "ubuntu", "VERSION_CODENAME": "noble"}}


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(REPO / "inventory" / "example.yml", group_defaults())


def kubernetes_version(inv: Inventory) -> str:
    """v1.33.5+k3s1 -> 1.33.0: the schema set kubernetes-validate carries for that minor."""
    match = re.match(r"v?(\d+)\.(\d+)", nvidia.k3s_version(inv))
    assert match, nvidia.k3s_version(inv)
    return f"{match[1]}.{match[2]}.0"


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate(inv: Inventory, text: str) -> None:
    for doc in documents(text):
        kubernetes_validate.validate(doc, kubernetes_version(inv), strict=True)


def by_dest(files: list[Any]) -> dict[str, str]:
    return {f.dest: f.render() for f in files}


def test_device_plugin_valid_and_runs_under_nvidia_runtime(inv: Inventory) -> None:
    text = nvidia.device_plugin(inv).render()
    validate(inv, text)
    (ds,) = documents(text)
    spec = ds["spec"]["template"]["spec"]
    assert ds["kind"] == "DaemonSet" and ds["metadata"]["namespace"] == "kube-system"
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["nodeSelector"] == nvidia.gpu_labels(inv)
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    version = group_defaults()["nvidia_device_plugin_version"]
    assert spec["containers"][0]["image"] == f"nvcr.io/nvidia/k8s-device-plugin:{version}"
    assert spec["volumes"][0]["hostPath"]["path"] == "/var/lib/kubelet/device-plugins"


def test_runtime_class_valid(inv: Inventory) -> None:
    text = nvidia.runtime_class().render()
    validate(inv, text)
    (rc,) = documents(text)
    assert (rc["kind"], rc["metadata"]["name"], rc["handler"]) == ("RuntimeClass", "nvidia", "nvidia")


def test_strict_validation_catches_a_typo(inv: Inventory) -> None:
    """The validator really is strict: a misspelt field fails (so the tests above can fail)."""
    (ds,) = documents(nvidia.device_plugin(inv).render())
    ds["spec"]["template"]["spec"]["runtimeClass"] = "nvidia"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, kubernetes_version(inv), strict=True)


def test_inventory_taints_become_tolerations(inv: Inventory) -> None:
    cluster = SimpleNamespace(settings={}, k3s=SimpleNamespace(
        gpu_taints=["nvidia.com/gpu=true:NoSchedule", "gpu-only:NoExecute", "tier=gpu:PreferNoSchedule"],
        gpu_labels={"hearth.dev/gpu": "nvidia"}))
    text = nvidia.device_plugin(cluster).render()  # type: ignore[arg-type]
    validate(inv, text)
    spec = documents(text)[0]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"hearth.dev/gpu": "nvidia"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "gpu-only", "operator": "Exists", "effect": "NoExecute"},
        {"key": "tier", "operator": "Equal", "value": "gpu", "effect": "PreferNoSchedule"},
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
    ]


def test_cluster_files_only_on_servers_and_only_with_nvidia_hosts(inv: Inventory) -> None:
    server = inv.k3s.server if inv.k3s else ""
    assert nvidia.DEVICE_PLUGIN in by_dest(nvidia.host_files(inv, server))
    agent = next(n for n, h in inv.hosts.items() if "k3s_agent" in h.roles)
    assert nvidia.DEVICE_PLUGIN not in by_dest(nvidia.host_files(inv, agent))
    no_gpus = inv.model_copy(update={"hosts": {n: h.model_copy(update={"gpus": []}) for n, h in inv.hosts.items()}})
    assert nvidia.cluster_files(no_gpus) == []


def test_runtime_class_only_where_k3s_does_not_ship_one(inv: Inventory) -> None:
    """k3s >= v1.29 ships the nvidia RuntimeClass: a second manager of the same object would fight it."""
    assert nvidia.k3s_ships_runtimeclass(inv)
    assert nvidia.RUNTIME_CLASS not in by_dest(nvidia.cluster_files(inv))
    assert inv.k3s is not None
    old = inv.model_copy(update={"k3s": inv.k3s.model_copy(update={"version": "v1.28.9+k3s1"})})
    assert nvidia.RUNTIME_CLASS in by_dest(nvidia.cluster_files(old))


def test_debian_driver_files(inv: Inventory) -> None:
    files = by_dest(nvidia.host_files(inv, "eyes"))
    sources = files[nvidia.NONFREE_SOURCES]
    assert "Components: contrib non-free non-free-firmware" in sources
    assert "Suites: bookworm bookworm-updates" in sources and "Suites: bookworm-security" in sources
    pin = files[nvidia.DRIVER_PIN]
    stanzas = [dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith("#"))
               for block in pin.split("\n\n")]
    assert stanzas[0]["Pin"] == "version 535.*" and stanzas[0]["Pin-Priority"] == "1001"
    assert stanzas[1]["Pin"] == "release o=Debian" and stanzas[1]["Pin-Priority"] == "-1"
    assert "nvidia-container-toolkit" not in pin and "nvidia-smi" in stanzas[1]["Package"]
    assert files[nvidia.NOUVEAU_BLACKLIST].splitlines()[1:] == ["blacklist nouveau", "options nouveau modeset=0"]
    toolkit = files[nvidia.TOOLKIT_SOURCES]
    assert f"deb [signed-by={nvidia.TOOLKIT_KEY}] https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /" \
        in toolkit
    assert nvidia.driver_packages(inv, "eyes") == nvidia.DEBIAN_HEADLESS
    assert nvidia.kernel_headers(inv, "eyes") == ["linux-headers-amd64"]
    assert nvidia.kernel_headers(inv, "eyes", {"container": "systemd-nspawn"}) == []


def test_ubuntu_gets_the_server_headless_flavour(inv: Inventory) -> None:
    facts = {"distro": UBUNTU_24}
    assert nvidia.driver_packages(inv, "eyes", facts) == ["nvidia-headless-535-server", "nvidia-utils-535-server"]
    files = by_dest(nvidia.host_files(inv, "eyes", facts))
    assert nvidia.NONFREE_SOURCES not in files and nvidia.DRIVER_PIN not in files
    assert nvidia.NOUVEAU_BLACKLIST in files


def test_a_container_gets_the_user_space_half_only(inv: Inventory) -> None:
    """The module, its firmware and persistenced are the hosting machine's: no dkms (and
    no compiler toolchain it pulls in) where no module can be built."""
    for facts in ({"container": "lxc"}, {"container": "systemd-nspawn"}):
        packages = nvidia.driver_packages(inv, "eyes", facts)
        assert packages == nvidia.DEBIAN_USERSPACE
        assert not {"nvidia-kernel-dkms", "firmware-nvidia-gsp", "nvidia-persistenced"} & set(packages)
        assert not nvidia.manages_persistenced(inv, "eyes", facts)
    assert nvidia.manages_persistenced(inv, "eyes", {"container": None})
    ubuntu = nvidia.driver_packages(inv, "eyes", {"distro": UBUNTU_24, "container": "lxc"})
    assert ubuntu == ["nvidia-utils-535-server", "libnvidia-compute-535-server"]
    # the user-space half stays on the pinned branch: every one of its packages is pinned
    pin = by_dest(nvidia.host_files(inv, "eyes"))[nvidia.DRIVER_PIN]
    assert all(p in pin for p in nvidia.DEBIAN_USERSPACE)


def test_mirror_and_branch_settings(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        d.setdefault("settings", {}).update(
            nvidia_toolkit_repo_url="http://mirror.lan/nvidia", nvidia_toolkit_repo_suite="stable",
            nvidia_toolkit_repo_components="main", nvidia_debian_mirror="http://mirror.lan/debian")
        d["hosts"]["eyes"].setdefault("settings", {})["nvidia_driver_branch"] = "550"

    inv = load_inventory(write_inventory(change), group_defaults())
    files = by_dest(nvidia.host_files(inv, "eyes"))
    assert "] http://mirror.lan/nvidia stable main\n" in files[nvidia.TOOLKIT_SOURCES]
    assert "URIs: http://mirror.lan/debian\n" in files[nvidia.NONFREE_SOURCES]
    assert "Pin: version 550.*" in files[nvidia.DRIVER_PIN]
    assert nvidia.driver_packages(inv, "eyes", {"distro": UBUNTU_24})[0] == "nvidia-headless-550-server"


def test_driver_left_alone_when_the_os_brings_it(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["hosts"]["spark"].setdefault("settings", {})["nvidia_manage_driver"] = False

    inv = load_inventory(write_inventory(change), group_defaults())
    assert set(by_dest(nvidia.host_files(inv, "spark"))) == {nvidia.TOOLKIT_SOURCES, nvidia.PERSISTENCED_DROPIN}


def test_power_limit_unit(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["hosts"]["eyes"]["gpus"][0]["power_limit_w"] = 120

    inv = load_inventory(write_inventory(change), group_defaults())
    unit = by_dest(nvidia.host_files(inv, "eyes"))[nvidia.POWER_LIMIT_UNIT]
    assert "ExecStart=/usr/bin/nvidia-smi -i 0 -pl 120" in unit
    assert "ConditionPathExists=/dev/nvidiactl" in unit and "Type=oneshot" in unit
    assert nvidia.POWER_LIMIT_UNIT not in by_dest(nvidia.host_files(load_inventory(
        REPO / "inventory" / "example.yml", group_defaults()), "eyes"))


@pytest.mark.parametrize(("change", "path", "message"), [
    (lambda d: d["hosts"]["eyes"]["gpus"][0].update(power_limit_w=0), "hosts.eyes.gpus[0].power_limit_w",
     "greater than 0"),
    (lambda d: d["hosts"]["eyes"]["gpus"][0].update(power_limit_w=150, vendor="amd"),
     "hosts.eyes.gpus[0].power_limit_w", "NVIDIA GPUs on Linux hosts only"),
    (lambda d: d.setdefault("settings", {}).update(nvidia_driver_branch="latest"),
     "settings.nvidia_driver_branch", "not a driver branch"),
    (lambda d: d["hosts"]["eyes"].update(allow_reboot="sometimes"), "hosts.eyes.allow_reboot", "boolean"),
])  # fmt: skip
def test_validation(write_inventory: Callable[..., Path], change: Callable[[dict[str, Any]], None],
                    path: str, message: str) -> None:
    target = write_inventory(change)
    with pytest.raises(InventoryError) as err:
        load_inventory(target, group_defaults())
    line = next(line for line in err.value.lines if f": {path}:" in line)
    assert line.startswith(f"{target}:") and message in line, err.value.lines
    assert re.match(rf"{re.escape(str(target))}:\d+: ", line)


def test_persistenced_is_skipped_without_the_driver_device_not_failed() -> None:
    from hearth.configs import nvidia as nvidia_configs

    dropin = nvidia_configs.persistenced_dropin()
    assert dropin.dest == "/etc/systemd/system/nvidia-persistenced.service.d/hearth.conf"
    lines = dropin.render().splitlines()
    assert "[Unit]" in lines and "ConditionPathExists=/dev/nvidiactl" in lines
