"""Defaults for hosts with NVIDIA GPUs (group `nvidia`); an inventory overrides them under `settings:`.

Driver: the distribution's own packages. Debian needs its `contrib`, `non-free` and
`non-free-firmware` components (the role adds them, from `nvidia_debian_mirror`);
Ubuntu gets the server/headless flavour (`nvidia-headless-<branch>-server`,
`nvidia-utils-<branch>-server`). The branch is pinned: apt may install only
versions of that branch. Rebooting is the inventory's call (`allow_reboot:` on the
host, default false): a driver that needs a reboot is reported, never rebooted
silently.

Container toolkit: from NVIDIA's apt repository; URL and key URL are settings so a
mirror (or the lab's signed repository) works. The key must be ASCII-armoured, as
NVIDIA's `gpgkey` is; `nvidia_toolkit_key_sha256` pins it when set.
"""

# --- driver ---
nvidia_driver_branch = "535"  # Debian 12 ships 535; Ubuntu: any branch with a -server flavour
nvidia_manage_driver = True  # False: the driver comes with the OS image (e.g. DGX OS); only checked
nvidia_debian_mirror = "http://deb.debian.org/debian"
nvidia_debian_security_mirror = "http://deb.debian.org/debian-security"
nvidia_persistenced = True  # keep the driver initialised between jobs (nvidia-persistenced)
# Where hearth reads the GPUs from; a host (or the lab) may point at another nvidia-smi.
nvidia_smi = "nvidia-smi"

# --- container toolkit (NVIDIA's apt repository, or a mirror of it) ---
nvidia_toolkit_repo_url = "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH)"
nvidia_toolkit_repo_suite = "/"  # NVIDIA's repository is flat ("deb URL /")
nvidia_toolkit_repo_components = ""
nvidia_toolkit_key_url = "https://nvidia.github.io/libnvidia-container/gpgkey"
nvidia_toolkit_key_sha256 = ""  # "" = not pinned
nvidia_toolkit_version = ""  # "" = the repository's newest; else e.g. "1.17.8-1"

# --- cluster: the device plugin placed in the k3s server's auto-deploy manifests ---
nvidia_device_plugin_version = "v0.17.1"
nvidia_device_plugin_image = "nvcr.io/nvidia/k8s-device-plugin:{version}"
