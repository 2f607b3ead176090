"""Defaults for the windows role (os: windows hosts); an inventory overrides them under `settings:`."""

# Where hearth expects what it does not install (the docs say how to install each).
windows_ollama_exe = r"C:\Program Files\Ollama\ollama.exe"
windows_wireguard_dir = r"C:\Program Files\WireGuard"
windows_sshd_exe = r"C:\Windows\System32\OpenSSH\sshd.exe"
# The scheduled task that runs `ollama serve` at boot (before anyone logs in).
windows_ollama_task = "hearth-ollama"
