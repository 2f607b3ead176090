"""Programs hearth installs on the nodes for telemetry and healing (standard library only:
they run on each host's own python3). Roles put their source in place; tests import them."""
