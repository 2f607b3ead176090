"""After the k3s role, on NVIDIA hosts in the cluster: k3s's containerd has the nvidia runtime.

k3s looks for nvidia-container-runtime when it starts. On a re-run where the toolkit
changed under a running k3s (or its generated containerd config lacks the runtime),
k3s is restarted and the generated config is checked, with a bounded wait.
"""

from __future__ import annotations

from pyinfra.api import deploy

from hearth.configs import nvidia as configs
from hearth.operations import nvidia as nvidia_ops


@deploy("nvidia")
def k3s_runtime() -> None:
    nvidia_ops.k3s_nvidia_runtime(name="k3s's containerd has the nvidia runtime (restart if the toolkit changed)",
                                  config=configs.CONTAINERD_CONFIG, runtime=configs.RUNTIME_BINARY)  # fmt: skip


k3s_runtime()
