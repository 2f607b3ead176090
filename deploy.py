"""hearth: provision every host of the inventory, role by role, by group membership.

    pyinfra inventory/<lab>.py deploy.py

Each role is a file under roles/; pyinfra prints every step under the role's name
("base | ...", "overlay | ..."), so the output reads as a plan.
"""

from pyinfra import host, local

if "linux" in host.groups:
    local.include("roles/base/main.py")
    local.include("roles/overlay/main.py")
    local.include("roles/firewall/main.py")

# --- gateway role (owned by the gateway engineer): include it here for group `gateway` ---
# if "gateway" in host.groups:
#     local.include("roles/gateway/main.py")
