"""Shipped preset scenarios (TOML files beside this module)."""
