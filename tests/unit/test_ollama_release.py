"""Ollama as released: archive format per version, GPU add-ons, checksums, pruning, the units."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.configs import ollama
from hearth.inventory import load_inventory
from hearth.operations.archive import extract_command

REPO = Path(__file__).resolve().parents[2]
SHA = {"amd64": "a" * 64, "amd64-rocm": "b" * 64, "arm64": "c" * 64}


@pytest.mark.parametrize(("version", "ext"), [
    ("0.13.5", ".tgz"), ("0.12.6", ".tgz"), ("0.9.6-standin", ".tgz"), ("0.13.99", ".tgz"),
    ("0.14.0", ".tar.zst"), ("0.14.0-rc1", ".tar.zst"), ("0.14.1", ".tar.zst"), ("0.20", ".tar.zst"),
    ("1.0.0", ".tar.zst"), ("v0.14.0", ".tar.zst"),
])
def test_archive_format_follows_the_release_on_both_sides_of_0_14_0(version: str, ext: str) -> None:
    assert ollama.archive_ext(version) == ext


def test_version_must_look_like_one() -> None:
    with pytest.raises(ValueError, match="not a version number"):
        ollama.archive_ext("latest")


def test_release_urls_and_cache_names_match_the_real_assets() -> None:
    main, rocm = ollama.release_assets("0.14.0", "amd64", ollama.RELEASE_URL, SHA, ["rocm"])
    base = "https://github.com/ollama/ollama/releases/download/v0.14.0/"
    assert main.url == base + "ollama-linux-amd64.tar.zst" and main.sha256 == SHA["amd64"]
    assert rocm.url == base + "ollama-linux-amd64-rocm.tar.zst" and rocm.sha256 == SHA["amd64-rocm"]
    ident = ollama.install_id("0.14.0", [SHA["amd64"], SHA["amd64-rocm"]])
    assert main.cached == f"/var/cache/hearth/ollama-{ident}.tar.zst"
    assert rocm.cached == f"/var/cache/hearth/ollama-{ident}-rocm.tar.zst"
    (old,) = ollama.release_assets("0.13.5", "arm64", ollama.RELEASE_URL, SHA, [])
    assert old.url == "https://github.com/ollama/ollama/releases/download/v0.13.5/ollama-linux-arm64.tgz"
    assert ollama.install_dir([old], "0.13.5") == f"/opt/ollama/0.13.5-{'c' * 12}"


def test_a_url_with_the_wrong_literal_extension_is_refused() -> None:
    legacy = "https://mirror.lan/ollama/v{version}/ollama-linux-{arch}.tgz"
    (asset,) = ollama.release_assets("0.13.5", "amd64", legacy, SHA, [])
    assert asset.url.endswith("/v0.13.5/ollama-linux-amd64.tgz")
    with pytest.raises(ValueError, match=r"released as \.tar\.zst"):
        ollama.release_assets("0.14.0", "amd64", legacy, SHA, [])
    with pytest.raises(ValueError, match=r"\{asset\}"):
        ollama.release_assets("0.13.5", "amd64", legacy, SHA, ["rocm"])


def test_missing_checksum_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"settings\.ollama_sha256\.amd64-rocm"):
        ollama.release_assets("0.14.0", "amd64", ollama.RELEASE_URL, {"amd64": "a" * 64}, ["rocm"])


def test_amd_gpus_bring_the_rocm_add_on_nvidia_none(monkeypatch: pytest.MonkeyPatch) -> None:
    inv = load_inventory(REPO / "inventory" / "lab.yml")
    assert ollama.gpu_addons(inv, "lab-ollama") == []  # NVIDIA: the main archive carries CUDA
    gpu = inv.hosts["lab-ollama"].gpus[0].model_copy(update={"vendor": "amd"})
    amd = inv.hosts["lab-ollama"].model_copy(update={"gpus": [gpu]})
    inv_amd = inv.model_copy(update={"hosts": {**inv.hosts, "lab-ollama": amd}})
    assert ollama.gpu_addons(inv_amd, "lab-ollama") == ["rocm"]
    arm = amd.model_copy(update={"arch": "arm64"})
    inv_arm = inv.model_copy(update={"hosts": {**inv.hosts, "lab-ollama": arm}})
    with pytest.raises(ValueError, match="no rocm add-on for arm64"):
        ollama.gpu_addons(inv_arm, "lab-ollama")


def test_prune_keeps_the_current_and_the_previous_version_only() -> None:
    installs = ["0.12.6-aaaaaaaaaaaa", "0.13.5-bbbbbbbbbbbb", "0.9.6-cccccccccccc", "0.14.0-dddddddddddd",
                "0.14.0-dddddddddddd.partial", "0.13.0-eeeeeeeeeeee.partial"]
    cached = ["ollama-0.12.6-aaaaaaaaaaaa.tgz", "ollama-0.13.5-bbbbbbbbbbbb.tgz", "ollama-0.9.6-cccccccccccc.tgz",
              "ollama-0.14.0-dddddddddddd.tar.zst", "ollama-0.14.0-dddddddddddd-rocm.tar.zst", "other.deb"]
    stale_installs, stale_cached = ollama.prune(installs, cached, "0.14.0-dddddddddddd")
    assert stale_installs == ["0.12.6-aaaaaaaaaaaa", "0.13.0-eeeeeeeeeeee.partial", "0.9.6-cccccccccccc"]
    assert stale_cached == ["ollama-0.12.6-aaaaaaaaaaaa.tgz", "ollama-0.9.6-cccccccccccc.tgz"]
    # the partial of the current install is the unpack's business (it starts it afresh)
    assert ollama.prune(["0.14.0-dddddddddddd"], [], "0.14.0-dddddddddddd") == ([], [])
    # nothing else installed yet: nothing to prune (a first install)
    assert ollama.prune([], [], "0.14.0-dddddddddddd") == ([], [])


def test_extraction_names_the_compression() -> None:
    zst = extract_command("/c/o.tar.zst", "/opt/x.partial")
    assert zst == "tar --zstd --no-same-owner -xf /c/o.tar.zst -C /opt/x.partial"
    assert extract_command("/c/o.tgz", "/d").startswith("tar --gzip ")
    with pytest.raises(ValueError):
        extract_command("/c/o.zip", "/d")


def test_nvidia_hosts_load_nvidia_uvm_as_root_and_sleepers_reload_it_on_resume() -> None:
    inv = load_inventory(REPO / "inventory" / "lab.yml")
    unit, resume = ollama.host_files(inv, "lab-ollama")  # an NVIDIA GPU, sleeps
    lines = unit.render().splitlines()
    assert "ExecStartPre=-+/sbin/modprobe nvidia_uvm" in lines
    assert lines.index("ExecStartPre=-+/sbin/modprobe nvidia_uvm") < next(
        i for i, line in enumerate(lines) if line.startswith("ExecStart="))
    assert "NoNewPrivileges=true" in lines
    assert resume.dest == "/etc/systemd/system/hearth-nvidia-uvm-resume.service"
    text = resume.render().splitlines()
    assert "ExecStart=-/sbin/rmmod nvidia_uvm" in text and "ExecStart=/sbin/modprobe nvidia_uvm" in text
    assert "ConditionPathExists=/sys/module/nvidia" in text  # no driver loaded: skipped, not failed
    assert "WantedBy=suspend.target hibernate.target hybrid-sleep.target suspend-then-hibernate.target" in text
    awake = inv.hosts["lab-ollama"].model_copy(update={"sleep": inv.hosts["lab-ollama"].sleep.model_copy(
        update={"sleeps": False})})
    (only_unit,) = ollama.host_files(inv.model_copy(update={"hosts": {**inv.hosts, "lab-ollama": awake}}),
                                     "lab-ollama")  # awake all the time: no resume unit
    assert "ExecStartPre=-+/sbin/modprobe nvidia_uvm" in only_unit.render().splitlines()
    cpu = awake.model_copy(update={"gpus": []})
    (cpu_unit,) = ollama.host_files(inv.model_copy(update={"hosts": {**inv.hosts, "lab-ollama": cpu}}), "lab-ollama")
    assert "nvidia_uvm" not in cpu_unit.render()
