"""The lab: local systemd-nspawn machines that hearth deploys to and checks.

`hearth lab up` turns an inventory (by default ``inventory/lab.yml``) into booted
Debian machines on this Linux box, each in its own network namespace on a bridge
that plays the home LAN, plus a lab daemon (power controller, artifact server and
apt proxy) listening on that bridge. Everything here is test infrastructure: the
roles never import it and cannot tell a lab machine from a real one.
"""
