"""Defaults for hosts that serve vLLM models (group `vllm`); an inventory overrides them under `settings:`.

vLLM is installed with pip into its own virtualenv, pinned to `vllm_version`; the
flags hearth accepts are that release's (hearth/vllm_flags/vllm-<version>.json).
"""

vllm_version = "0.11.0"
vllm_index_url = ""  # empty: pip_index_url (a LAN mirror works); e.g. a CUDA-specific wheel index
vllm_hf_home = "/var/lib/vllm/huggingface"  # HF_HOME: the model cache, writable by the service only
vllm_hf_token = ""  # a secret reference (env:NAME / file:PATH) for gated models; empty: none
vllm_ready_timeout_s = 900  # per served model unless its serve sets ready_timeout_s (large models load for minutes)
vllm_logging_level = "WARNING"  # never below WARNING: at INFO/DEBUG vLLM logs prompts
vllm_restart_sec = 15  # Restart=on-failure delay ...
vllm_start_limit_burst = 4  # ... at most this many starts ...
vllm_start_limit_interval_s = 1800  # ... within this window, then systemd stops retrying
# Values this host's vLLM build takes beyond the pinned release's fixed sets (a fork, a
# plugin): {flag or flag.key: [value, ...]}, e.g. {kv-cache-dtype: [turboquant_k8v4]}.
vllm_extra_choices: dict[str, list[str]] = {}
