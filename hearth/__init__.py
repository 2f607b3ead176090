"""hearth: provision a private home-lab AI cluster from one inventory."""

__version__ = "0.1.0"
