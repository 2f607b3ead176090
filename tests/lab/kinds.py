"""pyinfra inventory for the YAML beside it (written by hearth lab)."""

from hearth.inventory.groups import pyinfra_groups

globals().update(pyinfra_groups(__file__))
