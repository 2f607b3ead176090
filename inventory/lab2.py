"""pyinfra inventory for `lab2.yml` (the one file to edit): groups per role, data per host.

    pyinfra inventory/lab2.py deploy.py
"""

from hearth.inventory.groups import pyinfra_groups

globals().update(pyinfra_groups(__file__))
