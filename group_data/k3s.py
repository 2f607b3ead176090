"""Defaults for k3s nodes (groups `k3s_servers`, `k3s_agents`); an inventory overrides them under `settings:`.

The binary is the official release asset for the host's architecture, downloaded
from `k3s_url` (a mirror works: any URL with the same {version}/{asset} layout) or,
with `k3s_airgap_dir`, uploaded from a folder on the deploying machine. Either way it
is checked against `k3s_sha256[arch]` before it is used: no checksum, no install.
Take the checksums from the release's `sha256sum-<arch>.txt` (`k3s_sha256_url`).

The config keys hearth accepts are those of this version, recorded with their
source in `group_data/k3s_config_keys.json` (scripts/k3s-config-keys).
"""

k3s_version = "v1.33.5+k3s1"  # Kubernetes v1.33.5
k3s_url = "https://github.com/k3s-io/k3s/releases/download/{version}/{asset}"
k3s_assets = {"amd64": "k3s", "arm64": "k3s-arm64"}
k3s_sha256_url = "https://github.com/k3s-io/k3s/releases/download/{version}/sha256sum-{arch}.txt"
k3s_sha256: dict[str, str] = {}  # per architecture: {"amd64": "...", "arm64": "..."}

# Air-gap: a folder on the deploying machine with the assets (k3s, k3s-arm64 and,
# with k3s_airgap_images, k3s-airgap-images-<arch>.tar.zst); "" = download.
k3s_airgap_dir = ""
# Also place the release's images tarball in the agent's images folder (k3s imports it at start).
k3s_airgap_images = False
k3s_images_asset = "k3s-airgap-images-{arch}.tar.zst"
k3s_images_sha256: dict[str, str] = {}

# Bounded waits: systemd's start timeout (the unit is Type=notify) and node Ready.
k3s_start_timeout_s = 300
k3s_ready_timeout_s = 180

# The image tests/lab/test_k3s_cluster.py runs on each GPU node of a real cluster.
k3s_cuda_probe_image = "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04"
