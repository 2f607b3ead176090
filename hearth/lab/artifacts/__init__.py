"""The lab's artifact server: what cannot be downloaded here, served on the bridge.

Three delivery mechanisms, the same ones roles use against the internet:
binaries by URL + sha256, a signed apt repository, and a PEP 503 pip index.
"""
