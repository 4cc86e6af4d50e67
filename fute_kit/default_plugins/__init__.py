"""Plugins shipped inside the core: loaded like any other, and selectable the same way."""
