"""Defaults for hosts that serve Ollama models (group `ollama`).

An inventory overrides them under `settings:`. The checksum is required: hearth
never installs a binary it cannot verify. Take it from the release's sha256sum.txt.
"""

ollama_version = "0.12.6"
ollama_url = "https://github.com/ollama/ollama/releases/download/v{version}/ollama-linux-{arch}.tgz"
ollama_sha256: dict[str, str] = {}  # per architecture: {"amd64": "...", "arm64": "..."}
