"""Defaults for every host. An inventory overrides any of these under `settings:`
(for the whole lab, or per host); an unknown setting is an error."""

# --- base ---
timezone = "Etc/UTC"
base_packages = ["ca-certificates", "curl", "chrony", "sudo", "python3", "iproute2"]
unattended_upgrades = False

# --- firewall: ports opened to the overlay only, by role ---
node_exporter_port = 9100
# Published (DNAT) TCP ports -- NodePort, hostPort, servicelb's 80/443, docker -p --
# are closed from the LAN; list the ones the LAN may reach (e.g. [80, 443] for an ingress).
firewall_lan_published: list[int] = []

# --- telemetry: node exporter (port above) and, on NVIDIA hosts, the GPU textfile timer ---
gpu_metrics_interval_s = 15
