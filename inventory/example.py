"""pyinfra inventory for `example.yml` (the one file to edit): groups per role, data per host.

    pyinfra inventory/example.py deploy.py
"""

from hearth.inventory.groups import pyinfra_groups

globals().update(pyinfra_groups(__file__))
