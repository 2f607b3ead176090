"""Defaults for hosts that serve Ollama models (group `ollama`).

An inventory overrides them under `settings:`. The checksum is required: hearth
never installs a binary it cannot verify. Take it from the release's sha256sum.txt.
"""

ollama_version = "0.14.0"
# {asset} is the release's archive for the version: ollama-linux-<arch>[-rocm].tar.zst
# from 0.14.0 on, .tgz before (hearth.configs.ollama.release_assets).
ollama_url = "https://github.com/ollama/ollama/releases/download/v{version}/{asset}"
# per archive: {"amd64": "...", "arm64": "...", "amd64-rocm": "..." (hosts with an AMD GPU)}
ollama_sha256: dict[str, str] = {}
