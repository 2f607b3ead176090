"""Defaults for the gateway host (group `gateway`); an inventory overrides them under `settings:`.

The gateway runs from its own virtualenv; these pins match pyproject.toml's (a unit
test keeps them equal). Packages come from `pip_index_url`.
"""

gateway_python_packages = [
    "aiohttp==3.14.5",
    "pydantic==2.14.3",
    "pyyaml==6.0.3",
    "prometheus-client==0.26.0",
    "wakeonlan==4.0.0",
    "uvloop==0.23.0",
]
pip_index_url = "https://pypi.org/simple"
