"""Role windows: a Windows GPU box over SSH + PowerShell (hearth's own operations).

After `hearth windows bootstrap` has run once on the box (OpenSSH server, the
deploy key, PowerShell as sshd's shell), everything here runs over SSH; each step
reads the box's state first and changes only what differs, so a second run
reports zero changes. One file per concern, in this order:

    sshd -> firewall -> power -> wol -> overlay -> ollama -> lmstudio

The overlay's key pair is made earlier (roles/windows/keys.py, included by
deploy.py before the Linux overlay) so Linux peers can read its public half.
"""

from pyinfra import local

local.include("roles/windows/sshd.py")
local.include("roles/windows/firewall.py")
local.include("roles/windows/power.py")
local.include("roles/windows/wol.py")
local.include("roles/windows/overlay.py")
local.include("roles/windows/ollama.py")
local.include("roles/windows/lmstudio.py")
