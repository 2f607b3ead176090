"""Defaults for roles/heal (the healing timer on GPU hosts, seed 002); `settings:` overrides."""

heal_interval_s = 60  # the timer's period: a dead serve is back within about one period
heal_max_restarts_per_hour = 3  # per unit; then the timer pages instead of restarting
heal_backoff_s = 60  # after the n-th restart in the hour the next waits heal_backoff_s * 2**(n-1)
heal_probe_timeout_s = 5
heal_ready_timeout_s = 180  # Ollama; a vLLM unit waits for its own ready_timeout_s
