"""The one inventory: model, loader and validation."""

from hearth.inventory.load import InventoryError, load_cached, load_inventory
from hearth.inventory.model import Host, Inventory, Serve
from hearth.inventory.secrets import SecretError, resolve_secret

__all__ = [
    "Host",
    "Inventory",
    "InventoryError",
    "SecretError",
    "Serve",
    "load_cached",
    "load_inventory",
    "resolve_secret",
]
