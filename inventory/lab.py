"""pyinfra inventory for `lab.yml` (the one file to edit): groups per role, data per host.

    pyinfra inventory/lab.py deploy.py
"""

from hearth.inventory.groups import pyinfra_groups

globals().update(pyinfra_groups(__file__))
